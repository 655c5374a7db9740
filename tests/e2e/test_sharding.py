"""Scale-out beyond one leader (issue 10): both controllers run as two shards, each with its own
Lease and, for the replicator, a standby; the namespaces split between the shards by their stable
hash. Every origin is cloned and routed exactly once, by the shard that owns its namespace; killing
one shard's replicator leader (SIGKILL: no release) hands that shard to its standby while the other
shard keeps its leader, and nothing is lost or done twice.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import requests
from invariants import assert_invariants, snapshot

from controller_common.kube import DEPLOYMENTS, LEASES, NAMESPACES, SERVICES
from controller_common.sharding import Shard
from e2e_support import ControllerProcess, wait_until
from world import VIRTUAL_SERVICES, World, free_port, seed_origin

pytestmark = pytest.mark.e2e

ORIGIN = "echo"
SHARDS = 2
# By the stable hash: team-a and team-b fall to shard 0, team-c and team-d to shard 1.
NAMESPACES_BY_SHARD = {0: ("team-a", "team-b"), 1: ("team-c", "team-d")}
ALL_NAMESPACES = [ns for group in NAMESPACES_BY_SHARD.values() for ns in group]
LEASE_FLAGS = [
    "--leader-elect",
    "--leader-election-namespace=default",
    "--leader-elect-lease-duration=3",
    "--leader-elect-renew-deadline=2",
    "--leader-elect-retry-period=0.3",
]


class ShardReplica:
    """One process of one shard, with its own metrics/probe port."""

    def __init__(self, world: World, binary: str, shard: int, replica: int) -> None:
        self.binary, self.shard = binary, shard
        self.port = free_port()
        args = [
            f"--metrics-bind-address=127.0.0.1:{self.port}",
            f"--health-probe-bind-address=127.0.0.1:{self.port}",
            f"--shard-count={SHARDS}",
            f"--shard-index={shard}",
            "--resync-period=30",
            *LEASE_FLAGS,
        ]
        env = {**world.env, "POLL_INTERVAL_SECONDS": "0.3"}
        name = f"{binary}#shard{shard}-{replica}"
        self.process = ControllerProcess(name, args, env=env, log_dir=world.workdir)
        world.controllers.append(self.process)
        self.prefix = binary.replace("-", "_")

    def metrics(self) -> str:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2).text
        except requests.RequestException:
            return ""

    def is_leader(self) -> bool:
        metric = f"{self.prefix}_leader_election_master_status"
        return any(line.startswith(metric) and line.endswith(" 1.0") for line in self.metrics().splitlines())

    def reconciled_namespaces(self) -> set[str]:
        """The namespaces of every key this process reconciled, from its JSON log."""
        found = set()
        for line in self.process.logs().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("event") == "reconcile finished":
                found.add(str(entry.get("key", "")).partition("/")[0])
        return found


def _lease(world: World, binary: str, shard: int) -> dict[str, Any]:
    return dict(world.client.get(LEASES, "default", f"{binary}-shard-{shard}")["spec"])


def _clones(world: World) -> dict[str, list[str]]:
    """Namespace -> clone Deployments of the origin."""
    out: dict[str, list[str]] = {}
    for namespace in ALL_NAMESPACES:
        items, _ = world.client.list(DEPLOYMENTS, namespace)
        out[namespace] = sorted(d["metadata"]["name"] for d in items if d["metadata"]["name"] != ORIGIN)
    return out


def _routes(world: World) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for namespace in ALL_NAMESPACES:
        vs = world.client.get(VIRTUAL_SERVICES, namespace, ORIGIN)
        out[namespace] = sorted(
            str(r.get("name"))
            for r in vs["spec"].get("http") or []
            if str(r.get("name")).startswith("service-router--")
        )
    return out


def _converged(world: World, numbers: list[int]) -> bool:
    clones = [f"{ORIGIN}-pr{n}" for n in numbers]
    routes = [f"service-router--{c}" for c in clones]
    return _clones(world) == dict.fromkeys(ALL_NAMESPACES, clones) and _routes(world) == dict.fromkeys(
        ALL_NAMESPACES, routes
    )


def test_two_shards_split_the_namespaces_and_survive_the_sigkill_of_one_shards_leader(world: World) -> None:
    assert {ns: Shard(SHARDS, 0).owns(ns) for ns in ALL_NAMESPACES} == {
        "team-a": True,
        "team-b": True,
        "team-c": False,
        "team-d": False,
    }
    repo = world.create_repository(ORIGIN)
    for namespace in ALL_NAMESPACES:
        world.client.create(NAMESPACES, {"metadata": {"name": namespace}})
        seed_origin(world.client, namespace, ORIGIN, repository=f"mercari/{ORIGIN}", image="ghcr.io/mercari/echo:1.0")
    untouched = snapshot(world)
    world.kube.clear_request_log()
    replicators = {shard: [ShardReplica(world, "replicator", shard, r) for r in (1, 2)] for shard in range(SHARDS)}
    routers = {shard: ShardReplica(world, "service-router", shard, 1) for shard in range(SHARDS)}

    first = world.open_pull_request(repo, "feature-a")
    try:
        wait_until(lambda: _converged(world, [first]), timeout=30, message="every namespace cloned and routed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{world.logs()[-6000:]}") from None

    # One leader per shard, each on its own Lease; each process says which shard it is.
    leaders = {}
    for shard, group in replicators.items():
        leaders[shard] = wait_until(
            lambda g=group: next((r for r in g if r.is_leader()), None), timeout=10, message=f"shard {shard} leader"
        )
        assert sum(r.is_leader() for r in group) == 1
        assert f'replicator_shard_info{{count="2",index="{shard}"}} 1.0' in group[0].metrics()
    holders = {shard: _lease(world, "replicator", shard)["holderIdentity"] for shard in range(SHARDS)}
    assert len(set(holders.values())) == SHARDS
    router_holders = {shard: _lease(world, "service-router", shard)["holderIdentity"] for shard in range(SHARDS)}
    assert all(router_holders.values())

    # SIGKILL shard 0's replicator leader: its standby waits out the Lease and takes over.
    leaders[0].process.kill()
    standby = next(r for r in replicators[0] if r is not leaders[0])
    second = world.open_pull_request(repo, "feature-b")
    try:
        wait_until(lambda: _converged(world, [first, second]), timeout=40, message="the standby took over")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{world.logs()[-6000:]}") from None
    assert standby.is_leader()
    shard0 = _lease(world, "replicator", 0)
    assert shard0["holderIdentity"] not in ("", None, holders[0])
    assert _lease(world, "replicator", 1)["holderIdentity"] == holders[1]  # the other shard never noticed
    assert leaders[1].is_leader()

    # Each process reconciled only the namespaces of its own shard.
    for shard, group in replicators.items():
        for replica in [*group, routers[shard]]:
            assert replica.reconciled_namespaces() <= set(NAMESPACES_BY_SHARD[shard]), replica.process.name
        assert set().union(*(r.reconciled_namespaces() for r in group)) == set(NAMESPACES_BY_SHARD[shard])
        assert routers[shard].reconciled_namespaces() == set(NAMESPACES_BY_SHARD[shard])

    # Nothing done twice: every clone Deployment and Service was created by exactly one request. (A
    # create answered 409 because a cache was behind writes nothing: counted apart, and shown.)
    writes = [
        r
        for r in world.kube.request_log
        if r.verb == "create" and r.user_agent.startswith("replicator/") and r.resource in ("deployments", "services")
    ]
    created = Counter((r.resource, r.namespace) for r in writes if r.status == 201)
    refused = [(r.resource, r.namespace, r.status) for r in writes if r.status != 201]
    assert {r[2] for r in refused} <= {409}, refused
    clone_services = {
        ns: [s for s in world.client.list(SERVICES, ns)[0] if s["metadata"]["name"] != ORIGIN] for ns in ALL_NAMESPACES
    }
    assert all(len(clone_services[ns]) == 2 for ns in ALL_NAMESPACES)
    expected = Counter({(kind, ns): 2 for kind in ("deployments", "services") for ns in ALL_NAMESPACES})
    assert created == expected, refused
    assert_invariants(world, untouched)
