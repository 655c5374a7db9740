"""Shards: a stable hash gives every namespace exactly one owner, the flags pick the shard, and the
manager's queues let only owned keys in."""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time

import pytest

from controller_common.flags import add_process_flags, process_settings
from controller_common.manager import Manager
from controller_common.metrics import Metrics
from controller_common.sharding import (
    UNSHARDED,
    Shard,
    ShardedWorkQueue,
    bucket,
    namespace_of_key,
    pod_ordinal,
)
from controller_common.workqueue import WorkQueue

NAMESPACES = [f"ns-{i}" for i in range(200)] + ["default", "team-a", "team-b", "team-c", "team-d", "kube-system"]


@pytest.mark.parametrize(
    ("name", "count", "expected"),
    [
        ("team-a", 2, 0),
        ("team-b", 2, 0),
        ("team-c", 2, 1),
        ("team-d", 2, 1),
        ("default", 2, 1),
        ("default", 7, 4),
        ("shop", 3, 1),
        ("", 2, 0),
    ],
)
def test_the_owner_is_pinned_so_every_version_and_machine_agrees(name: str, count: int, expected: int) -> None:
    assert bucket(name, count) == expected
    assert bucket(name, count) == int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count


def test_the_owner_does_not_depend_on_the_process_hash_seed() -> None:
    """Python's ``hash()`` of a str differs per process; the shard of a namespace must not."""
    code = "from controller_common.sharding import bucket; print([bucket(f'ns-{i}', 5) for i in range(50)])"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert outputs == {str([bucket(f"ns-{i}", 5) for i in range(50)]) + "\n"}


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_every_namespace_has_exactly_one_owner_and_the_shards_share_them(count: int) -> None:
    shards = [Shard(count, index) for index in range(count)]
    owners = {ns: [s.index for s in shards if s.owns(ns)] for ns in NAMESPACES}
    assert all(len(found) == 1 for found in owners.values())
    per_shard = [sum(1 for found in owners.values() if found == [s.index]) for s in shards]
    assert min(per_shard) > len(NAMESPACES) / count / 2  # no shard starves


def test_unsharded_owns_everything_and_keeps_the_lease_name() -> None:
    assert Shard(1, 0) == UNSHARDED and not UNSHARDED.sharded
    assert all(UNSHARDED.owns(ns) for ns in NAMESPACES)
    assert UNSHARDED.lease_name("replicator") == "replicator"
    assert Shard(2, 1).lease_name("replicator") == "replicator-shard-1"


@pytest.mark.parametrize(("count", "index"), [(0, 0), (2, 2), (2, -1), (-1, 0)])
def test_an_impossible_shard_is_refused(count: int, index: int) -> None:
    with pytest.raises(ValueError, match="shard"):
        Shard(count, index)


@pytest.mark.parametrize(
    ("key", "namespace"),
    [("team-a/echo", "team-a"), ("team-a/echo/x", "team-a"), ("cluster-scoped", ""), ("/x", "")],
)
def test_a_key_is_owned_by_its_namespace(key: str, namespace: str) -> None:
    assert namespace_of_key(key) == namespace
    assert Shard(2, bucket(namespace, 2)).owns_key(key)
    assert not Shard(2, 1 - bucket(namespace, 2)).owns_key(key)


@pytest.mark.parametrize(
    ("pod", "ordinal"),
    [
        ("replicator-0", 0),
        ("replicator-1", 1),
        ("service-router-12", 12),
        ("replicator-shard-1-3", 3),
        ("replicator", None),
        ("replicator-", None),
        ("replicator-01", None),  # StatefulSets never pad
        ("replicator-7d4b9c8f6-x2k9p", None),
        ("Replicator-1", None),
        ("", None),
    ],
)
def test_the_ordinal_is_read_from_a_statefulset_pod_name(pod: str, ordinal: int | None) -> None:
    assert pod_ordinal(pod) == ordinal


def _settings(argv: list[str], env: dict[str, str] | None = None) -> tuple[Shard, str | None]:
    parser = argparse.ArgumentParser(prog="controller")
    add_process_flags(parser)
    settings = process_settings(parser, parser.parse_args(argv), env or {"POD_NAMESPACE": "ns"}, name="ctl")
    lease = settings.leader_election.lease_name if settings.leader_election is not None else None
    return settings.shard, lease


@pytest.mark.parametrize(
    ("argv", "env", "shard", "lease"),
    [
        pytest.param([], {}, Shard(1, 0), "ctl", id="default-unsharded"),
        pytest.param([], {"POD_NAME": "ctl-1"}, Shard(1, 0), "ctl", id="unsharded-ignores-pod-name"),
        pytest.param(["--shard-count=2", "--shard-index=1"], {}, Shard(2, 1), "ctl-shard-1", id="flags"),
        pytest.param(["--shard-count=3"], {"POD_NAME": "ctl-2"}, Shard(3, 2), "ctl-shard-2", id="statefulset-ordinal"),
        pytest.param(
            ["--shard-count=2", "--shard-index=0"], {"POD_NAME": "ctl-1"}, Shard(2, 0), "ctl-shard-0", id="flag-wins"
        ),
        pytest.param(["--shard-count=2"], {"POD_NAME": "ctl-abcde"}, Shard(2, 0), "ctl-shard-0", id="no-ordinal"),
        pytest.param(
            ["--shard-count=2", "--shard-index=1", "--leader-election-id=mine"],
            {},
            Shard(2, 1),
            "mine-shard-1",
            id="own-lease-id",
        ),
    ],
)
def test_the_shard_comes_from_the_flags_or_the_statefulset_ordinal(
    argv: list[str], env: dict[str, str], shard: Shard, lease: str
) -> None:
    assert _settings(["--leader-elect", *argv], {"POD_NAMESPACE": "ns", **env}) == (shard, lease)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--shard-count=0"], {}, "--shard-count must be at least 1"),
        (["--shard-count=2", "--shard-index=2"], {}, "--shard-index is 2: a shard index must be in 0..1"),
        (["--shard-count=2", "--shard-index=-1"], {}, "--shard-index is -1"),
        (["--shard-index=1"], {}, "must be in 0..0"),
        (["--shard-count=2"], {"POD_NAME": "ctl-5"}, "the ordinal of $POD_NAME='ctl-5' is 5"),
    ],
)
def test_a_shard_index_out_of_range_is_a_usage_error(
    argv: list[str], env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _settings(argv, env)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_sharded_queue_lets_in_only_owned_keys_however_they_come(metrics: Metrics) -> None:
    shard = Shard(2, 0)
    queue = ShardedWorkQueue("q", shard.owns_key, metrics=metrics)
    for key in ("team-a/x", "team-c/x"):
        queue.add(key)
        queue.add_after(key, 0.01)
        queue.add_rate_limited(key)
    assert queue.get(timeout=1) == "team-a/x"
    queue.done("team-a/x")
    deadline = time.monotonic() + 2
    seen = []
    while time.monotonic() < deadline and len(seen) < 1:
        key = queue.get(timeout=0.1)
        if key is not None:
            seen.append(key)
            queue.done(key)
    assert seen == ["team-a/x"]  # the delayed re-add of the owned key; none of team-c's
    assert queue.get(timeout=0.2) is None
    queue.shutdown()


class NoCluster:
    """The queues and the metric need no cluster: the manager only names itself to its client."""

    def identify(self, component: str, version: str) -> None:
        pass


def _manager(metrics: Metrics, shard: Shard) -> Manager:
    return Manager(name="ctl", client=NoCluster(), metrics=metrics, shard=shard)  # type: ignore[arg-type]


@pytest.mark.parametrize("shard", [Shard(1, 0), Shard(2, 0), Shard(2, 1)], ids=str)
def test_the_managers_queues_filter_by_namespace_or_by_the_given_owner(metrics: Metrics, shard: Shard) -> None:
    manager = _manager(metrics, shard)
    by_namespace = manager.work_queue("a")
    by_repository = manager.work_queue("b", owner=lambda key: key.partition("#")[0])
    keys = [f"{ns}/origin" for ns in ("team-a", "team-b", "team-c", "team-d")]
    for key in keys:
        by_namespace.add(key)
        by_repository.add(f"{key}#1")
    expected = sorted(k for k in keys if shard.owns(k.partition("/")[0]))
    assert sorted(_drain(by_namespace)) == expected
    repositories = sorted(k for k in (f"{k}#1" for k in keys) if shard.owns(k.partition("#")[0]))
    assert sorted(_drain(by_repository)) == repositories
    assert len(expected) == (4 if not shard.sharded else 2)


def _drain(queue: WorkQueue) -> list[str]:
    out = []
    while (key := queue.get(timeout=0)) is not None:
        out.append(key)
    return out


def test_the_manager_says_which_shard_it_is(metrics: Metrics) -> None:
    _manager(metrics, Shard(3, 2))
    assert metrics.registry.get_sample_value("test_shard_info", {"index": "2", "count": "3"}) == 1.0
    other = Metrics("other")
    _manager(other, UNSHARDED)
    assert other.registry.get_sample_value("other_shard_info", {"index": "0", "count": "1"}) == 1.0
