"""Leader election on a real Lease in the kube API emulator: one leader, hand-over on release."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller_common.kube import LEASES, KubeClient
from controller_common.leader import LeaderElector
from controller_common.metrics import Metrics

kube_api = pytest.importorskip("emulators.kube_api")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[KubeClient]:
    server = kube_api.KubeApiServer().start()
    client = KubeClient.from_environment(str(server.write_kubeconfig(tmp_path / "kc")), request_timeout=5)
    yield client
    client.close()
    server.stop()


def candidate(client: KubeClient, identity: str) -> LeaderElector:
    return LeaderElector(
        client,
        name="replicator",
        namespace="default",
        identity=identity,
        lease_duration=2.0,
        renew_deadline=1.0,
        retry_period=0.05,
        metrics=Metrics("t"),
    )


def test_one_leader_then_hand_over_on_release(client: KubeClient) -> None:
    a, b = candidate(client, "a"), candidate(client, "b")
    assert a.acquire(threading.Event())
    lease = client.get(LEASES, "default", "replicator")
    assert lease["spec"]["holderIdentity"] == "a"

    a_stop, b_stop = threading.Event(), threading.Event()
    a_result: list[bool] = []
    b_result: list[Any] = []
    a_renewing = threading.Thread(target=lambda: a_result.append(a.renew_until_lost(a_stop)))
    a_renewing.start()
    b_waiting = threading.Thread(target=lambda: b_result.append(b.acquire(b_stop)))
    b_waiting.start()
    b_waiting.join(0.5)
    assert b_waiting.is_alive(), "b waits while a renews"
    assert not b.is_leader()

    a_stop.set()  # a shuts down cleanly and releases
    a_renewing.join(3)
    assert a_result == [True]
    b_waiting.join(3)
    assert b_result == [True], "b takes over well before a lease duration would have expired"
    lease = client.get(LEASES, "default", "replicator")
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] >= 1
    b_stop.set()
