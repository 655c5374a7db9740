"""The worker loop: each reconcile outcome maps to one queue action and one result label."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import structlog

from controller_common import errors
from controller_common.engine import Controller
from controller_common.metrics import Metrics
from controller_common.workqueue import ItemExponentialFailureRateLimiter, WorkQueue


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return condition()


@pytest.fixture
def queue(metrics: Metrics) -> WorkQueue:
    # A long base delay: a rate-limited key never comes back during a test by accident.
    q = WorkQueue("q", ItemExponentialFailureRateLimiter(60.0, 600.0), metrics=metrics)
    yield q  # type: ignore[misc]
    q.shutdown()


def raising(exc: BaseException | None) -> Callable[[str], None]:
    def reconcile(key: str) -> None:
        if exc is not None:
            raise exc

    return reconcile


@pytest.mark.parametrize(
    ("exc", "result", "requeues"),
    [
        (None, "success", 0),
        (errors.TransientError("rollout not finished"), "requeue", 1),
        (errors.Conflict("stale"), "error", 1),
        (errors.ServerError("boom", status=503), "error", 1),
        (errors.ConnectionFailed("refused"), "error", 1),
        (errors.TooManyRequests("slow down"), "error", 1),
        (errors.PermanentError("bad annotation"), "error", 0),
        (errors.Invalid("rejected"), "error", 0),
        (errors.Forbidden("rbac"), "error", 0),
        (ValueError("a bug"), "error", 1),
    ],
    ids=[
        "success-forgets",
        "transient-requeues",
        "conflict-requeues",
        "5xx-requeues",
        "connection-requeues",
        "429-requeues",
        "permanent-forgets",
        "422-forgets",
        "403-forgets",
        "bug-requeues",
    ],
)
def test_outcome_maps_to_queue_action_and_result(
    queue: WorkQueue, metrics: Metrics, exc: BaseException | None, result: str, requeues: int
) -> None:
    queue.rate_limiter.when("ns/a")  # a previous failure: success and permanent errors must forget it
    controller = Controller("c", reconcile=raising(exc), queue=queue, metrics=metrics)
    queue.add("ns/a")
    assert controller.process_next(timeout=1)
    assert queue.num_requeues("ns/a") == (requeues + 1 if requeues else 0)
    assert metrics.registry.get_sample_value("test_reconcile_total", {"controller": "c", "result": result}) == 1
    assert metrics.registry.get_sample_value("test_reconcile_time_seconds_count", {"controller": "c"}) == 1
    errors_count = metrics.registry.get_sample_value("test_reconcile_errors_total", {"controller": "c"})
    assert errors_count == (1 if result == "error" else 0)


def test_requeue_after_brings_the_key_back_after_the_delay(queue: WorkQueue, metrics: Metrics) -> None:
    controller = Controller("c", reconcile=raising(errors.RequeueAfter(0.02)), queue=queue, metrics=metrics)
    queue.add("ns/a")
    controller.process_next(timeout=1)
    assert queue.num_requeues("ns/a") == 0, "requeue-after is not a failure"
    assert queue.get(timeout=0) is None, "not before the delay"
    assert queue.get(timeout=2) == "ns/a"
    labels = {"controller": "c", "result": "requeue_after"}
    assert metrics.registry.get_sample_value("test_reconcile_total", labels) == 1


def test_reconcile_runs_with_bound_log_context(queue: WorkQueue, metrics: Metrics) -> None:
    seen: dict[str, Any] = {}

    def reconcile(key: str) -> None:
        seen.update(structlog.contextvars.get_contextvars())

    Controller("c", reconcile=reconcile, queue=queue, metrics=metrics).process("ns/a")
    assert seen["controller"] == "c"
    assert seen["key"] == "ns/a"
    assert len(seen["reconcile_id"]) == 16
    assert "key" not in structlog.contextvars.get_contextvars(), "context is unbound afterwards"


def test_done_is_called_so_a_key_added_meanwhile_runs_again(queue: WorkQueue, metrics: Metrics) -> None:
    calls: list[str] = []

    def reconcile(key: str) -> None:
        calls.append(key)
        if len(calls) == 1:
            queue.add(key)  # an informer event while the key is in flight

    controller = Controller("c", reconcile=reconcile, queue=queue, metrics=metrics)
    queue.add("ns/a")
    assert controller.process_next(timeout=1)
    assert controller.process_next(timeout=1)
    assert calls == ["ns/a", "ns/a"]


def test_run_processes_keys_and_stop_finishes_the_item_in_flight(queue: WorkQueue, metrics: Metrics) -> None:
    started = threading.Event()
    release = threading.Event()
    finished: list[str] = []

    def reconcile(key: str) -> None:
        if key == "ns/slow":
            started.set()
            release.wait(5)
        finished.append(key)

    controller = Controller("c", reconcile=reconcile, queue=queue, workers=2, metrics=metrics)
    stop = threading.Event()
    runner = threading.Thread(target=controller.run, args=(stop,))
    runner.start()
    queue.add("ns/fast")
    assert wait_until(lambda: "ns/fast" in finished)
    queue.add("ns/slow")
    assert started.wait(2)
    stop.set()
    assert wait_until(lambda: queue.shutting_down)
    queue.add("ns/after-stop")
    assert runner.is_alive(), "run() waits for the reconcile in flight"
    release.set()
    runner.join(5)
    assert not runner.is_alive()
    assert finished == ["ns/fast", "ns/slow"]


def test_workers_survive_exceptions(queue: WorkQueue, metrics: Metrics) -> None:
    calls: list[str] = []

    def reconcile(key: str) -> None:
        calls.append(key)
        if key == "ns/bad":
            raise RuntimeError("bug")

    controller = Controller("c", reconcile=reconcile, queue=queue, workers=1, metrics=metrics)
    stop = threading.Event()
    runner = threading.Thread(target=controller.run, args=(stop,))
    runner.start()
    queue.add("ns/bad")
    queue.add("ns/good")
    try:
        assert wait_until(lambda: calls == ["ns/bad", "ns/good"])
    finally:
        stop.set()
        runner.join(5)


def test_workers_must_be_positive(queue: WorkQueue) -> None:
    with pytest.raises(ValueError):
        Controller("c", reconcile=raising(None), queue=queue, workers=0)
