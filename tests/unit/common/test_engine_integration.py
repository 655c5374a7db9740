"""The whole pipeline against the kube API emulator: informer -> queue -> engine -> writes.

A toy level-based controller stamps a ``reconciled`` annotation on every ConfigMap. Injected
write faults must be retried by the work queue, not lost; deleted objects must not crash it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controller_common import errors, objects
from controller_common.engine import Controller
from controller_common.informer import Informer
from controller_common.kube import CONFIGMAPS, KubeClient
from controller_common.metrics import Metrics
from controller_common.workqueue import WorkQueue


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics("toy")


@pytest.fixture
def running(client: KubeClient, metrics: Metrics) -> Iterator[Informer]:
    informer = Informer(client, CONFIGMAPS, namespace="default", resync_seconds=0, name="cm", metrics=metrics)
    queue = WorkQueue("cm", metrics=metrics)
    informer.on_change(lambda _t, obj: queue.add(objects.object_key(obj)))

    def reconcile(key: str) -> None:
        cached = informer.get(key)
        if cached is None:
            return  # deleted: nothing to converge
        if objects.annotations(cached).get("reconciled") == "true":
            return  # level-based: already converged, write nothing
        namespace, name = objects.split_key(key)
        client.patch(CONFIGMAPS, namespace, name, {"metadata": {"annotations": {"reconciled": "true"}}})

    controller = Controller("toy", reconcile=reconcile, queue=queue, workers=2, metrics=metrics)
    stop = threading.Event()
    informer.start()
    assert informer.wait_for_sync(5)
    runner = threading.Thread(target=controller.run, args=(stop,))
    runner.start()
    yield informer
    stop.set()
    runner.join(5)
    informer.stop()


def annotated(client: KubeClient, name: str) -> bool:
    try:
        obj = client.get(CONFIGMAPS, "default", name)
    except errors.NotFound:
        return False
    return objects.annotations(obj).get("reconciled") == "true"


def test_converges_new_objects(client: KubeClient, running: Informer) -> None:
    for name in ("a", "b", "c"):
        client.create(CONFIGMAPS, {"metadata": {"name": name, "namespace": "default"}})
    assert wait_until(lambda: all(annotated(client, n) for n in ("a", "b", "c")))


def test_write_faults_are_retried_by_the_queue(
    client: KubeClient, server: Any, running: Informer, metrics: Metrics
) -> None:
    server.faults.inject(verb="patch", resource="configmaps", status=500, times=3)
    client.create(CONFIGMAPS, {"metadata": {"name": "flaky", "namespace": "default"}})
    assert wait_until(lambda: annotated(client, "flaky"))
    errors_total = metrics.registry.get_sample_value("toy_reconcile_total", {"controller": "toy", "result": "error"})
    assert errors_total == 3
    assert (metrics.registry.get_sample_value("toy_workqueue_retries_total", {"name": "cm"}) or 0) >= 3


def test_deleted_objects_reconcile_to_nothing(client: KubeClient, running: Informer, metrics: Metrics) -> None:
    client.create(CONFIGMAPS, {"metadata": {"name": "short-lived", "namespace": "default"}})
    assert wait_until(lambda: annotated(client, "short-lived"))
    client.delete(CONFIGMAPS, "default", "short-lived")
    assert wait_until(lambda: running.get("default/short-lived") is None)
    sample = metrics.registry.get_sample_value("toy_reconcile_total", {"controller": "toy", "result": "error"})
    assert sample in (None, 0.0)
