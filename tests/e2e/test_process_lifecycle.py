"""Both controllers behave like well-run controller processes (issue 6, process lifecycle).

Two replicas of each controller run with leader election against the emulated cluster: every
replica serves /metrics, /healthz and /readyz; only the Lease holder writes. Killing the leader
hands its work to the standby without duplicate or lost clones and routes; SIGTERM exits 0 and
releases the Lease.
"""

from __future__ import annotations

import signal
import subprocess

import pytest
import requests
from invariants import assert_invariants, snapshot

from controller_common import contract
from controller_common.kube import LEASES, SERVICES
from e2e_support import BIN_DIR, ControllerProcess, wait_until
from world import World, free_port

pytestmark = pytest.mark.e2e

ORIGIN = "echo"
LEASE_FLAGS = [
    "--leader-elect",
    "--leader-election-namespace",
    "default",
    "--leader-elect-lease-duration",
    "3",
    "--leader-elect-renew-deadline",
    "2",
    "--leader-elect-retry-period",
    "0.3",
]


class Replica:
    def __init__(self, world: World, binary: str, index: int) -> None:
        self.port = free_port()
        args = [
            "--metrics-bind-address",
            f"127.0.0.1:{self.port}",
            "--health-probe-bind-address",
            f"127.0.0.1:{self.port}",
        ]
        env = {**world.env, "POLL_INTERVAL_SECONDS": "0.3"}
        self.process = ControllerProcess(f"{binary}#{index}", [*args, *LEASE_FLAGS], env=env, log_dir=world.workdir)
        world.controllers.append(self.process)
        self.prefix = binary.replace("-", "_")

    def get(self, path: str) -> requests.Response | None:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=2)
        except requests.RequestException:
            return None

    def is_leader(self) -> bool:
        response = self.get("/metrics")
        if response is None:
            return False
        metric = f"{self.prefix}_leader_election_master_status"
        return any(line.startswith(metric) and line.endswith(" 1.0") for line in response.text.splitlines())


def test_version_flag_names_each_controller() -> None:
    for binary in ("replicator", "service-router"):
        out = subprocess.run([str(BIN_DIR / binary), "--version"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0
        assert out.stdout.strip().startswith(f"{binary} 0.")


def test_standby_takes_over_when_the_leader_dies(world: World) -> None:
    repo = world.create_repository(ORIGIN)
    world.seed_origin(ORIGIN, repository=f"mercari/{ORIGIN}", image="ghcr.io/mercari/echo:1.0")
    untouched = snapshot(world)
    replicas = {
        binary: [Replica(world, binary, 1), Replica(world, binary, 2)] for binary in ("replicator", "service-router")
    }

    # Every replica is probed and scraped, leader or not.
    for group in replicas.values():
        for replica in group:
            wait_until(lambda r=replica: (resp := r.get("/readyz")) is not None and resp.status_code == 200, timeout=30)
            assert (resp := replica.get("/healthz")) is not None and resp.status_code == 200
            metrics = replica.get("/metrics")
            assert metrics is not None and f"{replica.prefix}_build_info" in metrics.text

    first = world.open_pull_request(repo, "feature-a")
    world.wait_for(ORIGIN, lambda s: f"service-router--{ORIGIN}-pr{first}" in s.route_names, message="first PR routed")
    for binary, group in replicas.items():
        leaders = [r for r in group if r.is_leader()]
        assert len(leaders) == 1, f"{binary}: exactly one leader expected"
        lease = world.client.get(LEASES, "default", binary)
        assert lease["spec"]["holderIdentity"]

    # Kill both leaders without a chance to release: the standbys wait out the lease and take over.
    for group in replicas.values():
        leader = next(r for r in group if r.is_leader())
        leader.process.kill()
    second = world.open_pull_request(repo, "feature-b")
    snap = world.wait_for(
        ORIGIN,
        lambda s: f"service-router--{ORIGIN}-pr{second}" in s.route_names,
        timeout=40,
        message="standby took over",
    )
    clones = sorted(name for name in snap.deployments if name.startswith(f"{ORIGIN}-pr"))
    assert clones == sorted([f"{ORIGIN}-pr{first}", f"{ORIGIN}-pr{second}"])
    assert sorted(r for r in snap.route_names if r.startswith("service-router--")) == sorted(
        [f"service-router--{ORIGIN}-pr{first}", f"service-router--{ORIGIN}-pr{second}"]
    )
    assert_invariants(world, untouched)

    # A graceful stop exits 0 and releases the Lease for the next replica.
    for binary, group in replicas.items():
        survivor = next(r for r in group if r.process.running)
        assert survivor.is_leader()
        assert survivor.process.stop(timeout=20) == 0, survivor.process.logs()[-2000:]
        lease = world.client.get(LEASES, "default", binary)
        assert lease["spec"].get("holderIdentity") in ("", None)


def test_dry_run_logs_the_plan_and_writes_nothing(world: World) -> None:
    repo = world.create_repository(ORIGIN)
    world.seed_origin(ORIGIN, repository=f"mercari/{ORIGIN}", image="ghcr.io/mercari/echo:1.0")
    world.open_pull_request(repo, "feature-a")
    world.kube.clear_request_log()
    world.start_controllers(extra=["--dry-run"])
    # Writes are told apart by the controllers' User-Agent (the test's own client is the default one).
    replicator, router = world.controllers
    wait_until(lambda: "dry run" in replicator.logs(), timeout=30, message="replicator logged its plan")
    # The router has nothing to route until the replicator writes; give it a clone Service of its own.
    world.client.create(
        SERVICES,
        {
            "metadata": {
                "name": f"{ORIGIN}-pr1",
                "namespace": "default",
                "annotations": {contract.ORIGIN_SERVICE_ANNOTATION: ORIGIN},
            },
            "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]},
        },
    )
    wait_until(lambda: "dry run" in router.logs(), timeout=30, message="router logged its plan")
    writes = [
        r
        for r in world.kube.request_log
        if r.verb in ("create", "update", "patch", "delete")
        and r.resource not in ("events", "leases")
        and r.user_agent.startswith(("replicator/", "service-router/"))
    ]
    assert writes == []
    assert f"{ORIGIN}-pr1" not in world.snapshot(ORIGIN).deployments


def test_effective_configuration_is_logged_once_with_secrets_redacted(world: World) -> None:
    world.start_controllers()
    replicator = world.controllers[0]
    wait_until(lambda: '"event": "starting"' in replicator.logs(), timeout=30)
    starting = [line for line in replicator.logs().splitlines() if '"event": "starting"' in line]
    assert len(starting) == 1
    assert world.env["GITHUB_TOKEN"] not in replicator.logs()
    assert '"github_token": "<set>"' in starting[0]


def test_sigterm_waits_for_the_reconcile_in_flight_and_a_second_signal_exits_at_once(world: World) -> None:
    repo = world.create_repository(ORIGIN)
    world.seed_origin(ORIGIN, repository=f"mercari/{ORIGIN}", image="ghcr.io/mercari/echo:1.0")
    world.start_controllers()
    replicator = world.controllers[0]
    number = world.open_pull_request(repo, "feature-a")
    world.wait_for(ORIGIN, lambda s: f"{ORIGIN}-pr{number}" in s.deployments, message="cloned")

    # Every API call now takes seconds: the next clone update is a reconcile in flight.
    world.kube.clear_request_log()
    world.kube.faults.latency_seconds = 6.0
    world.push(repo, "feature-a")
    wait_until(
        lambda: any(r.verb == "update" and r.user_agent.startswith("replicator/") for r in world.kube.request_log),
        timeout=30,
        message="replicator's update in flight",
    )
    replicator.process.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        replicator.process.wait(timeout=1.0)  # still finishing the update it holds
    replicator.process.send_signal(signal.SIGTERM)
    assert replicator.process.wait(timeout=5.0) == 1
    assert "second signal" in replicator.logs()
    world.kube.faults.latency_seconds = 0.0
