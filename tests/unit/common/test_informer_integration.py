"""Informer against the Kubernetes API emulator: sync, live events, dropped watches, 410 relist."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controller_common.informer import Informer
from controller_common.kube import CONFIGMAPS, KubeClient
from controller_common.metrics import Metrics


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "data": data}


class Seen:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, event_type: str, obj: dict[str, Any]) -> None:
        with self.lock:
            self.events.append((event_type, obj["metadata"]["name"]))

    def has(self, *expected: tuple[str, str]) -> bool:
        with self.lock:
            return all(e in self.events for e in expected)


@pytest.fixture
def informer(client: KubeClient, metrics: Metrics) -> Iterator[tuple[Informer, Seen]]:
    informer = Informer(
        client,
        CONFIGMAPS,
        namespace="default",
        resync_seconds=0,
        name="cm",
        backoff_base=0.01,
        backoff_max=0.1,
        metrics=metrics,
    )
    seen = Seen()
    informer.on_change(seen)
    yield informer, seen
    informer.stop()


def test_sync_and_live_events(client: KubeClient, informer: tuple[Informer, Seen]) -> None:
    inf, seen = informer
    client.create(CONFIGMAPS, configmap("pre", k="1"))
    inf.start()
    assert inf.wait_for_sync(5)
    assert seen.has(("ADDED", "pre"))
    client.create(CONFIGMAPS, configmap("live", k="1"))
    client.patch(CONFIGMAPS, "default", "pre", {"data": {"k": "2"}})
    client.delete(CONFIGMAPS, "default", "live")
    assert wait_until(lambda: seen.has(("ADDED", "live"), ("MODIFIED", "pre"), ("DELETED", "live")))
    assert inf.keys() == ["default/pre"]
    assert inf.get("default/pre")["data"] == {"k": "2"}  # type: ignore[index]


def test_recovers_from_dropped_watches(client: KubeClient, server: Any, informer: tuple[Informer, Seen]) -> None:
    inf, seen = informer
    inf.start()
    assert inf.wait_for_sync(5)
    client.create(CONFIGMAPS, configmap("before-drop"))
    assert wait_until(lambda: seen.has(("ADDED", "before-drop"))), "the watch is up"
    server.faults.drop_watches()
    client.create(CONFIGMAPS, configmap("after-drop"))
    assert wait_until(lambda: seen.has(("ADDED", "after-drop")))
    assert inf.get("default/after-drop") is not None


def test_relists_after_gone_and_reports_deletions_missed_while_down(
    client: KubeClient, server: Any, informer: tuple[Informer, Seen], metrics: Metrics
) -> None:
    inf, seen = informer
    client.create(CONFIGMAPS, configmap("stays"))
    client.create(CONFIGMAPS, configmap("vanishes"))
    inf.start()
    assert inf.wait_for_sync(5)
    client.create(CONFIGMAPS, configmap("probe"))
    assert wait_until(lambda: seen.has(("ADDED", "probe"))), "the watch is up, so dropping it is what ends it"
    # Take the watch down and keep it down while the world changes and history is compacted.
    fault = server.faults.inject(verb="watch", resource="configmaps", status=500, rate=1.0)
    server.faults.drop_watches()
    client.delete(CONFIGMAPS, "default", "vanishes")
    client.create(CONFIGMAPS, configmap("appears"))
    server.compact()
    assert wait_until(
        lambda: (metrics.registry.get_sample_value("test_informer_errors_total", {"resource": "configmaps"}) or 0) >= 1
    )
    fault.remove()
    assert wait_until(lambda: seen.has(("DELETED", "vanishes"), ("ADDED", "appears")))
    assert inf.keys() == ["default/appears", "default/probe", "default/stays"]
    assert metrics.registry.get_sample_value("test_informer_relists_total", {"resource": "configmaps"}) == 2
