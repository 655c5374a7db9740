"""Work queue: client-go's de-duplication, delay and rate-limiting semantics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from controller_common.metrics import Metrics
from controller_common.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    WorkQueue,
    default_rate_limiter,
    exponential_backoff,
)


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return condition()


@pytest.fixture
def queue(metrics: Metrics) -> WorkQueue:
    q = WorkQueue("q", metrics=metrics)
    yield q  # type: ignore[misc]
    q.shutdown()


def test_key_added_while_queued_is_queued_once(queue: WorkQueue) -> None:
    queue.add("a")
    queue.add("a")
    assert len(queue) == 1
    assert queue.get(timeout=0) == "a"
    assert queue.get(timeout=0.01) is None


def test_keys_come_out_in_insertion_order(queue: WorkQueue) -> None:
    for key in ("c", "a", "b"):
        queue.add(key)
    assert [queue.get(0), queue.get(0), queue.get(0)] == ["c", "a", "b"]


def test_key_added_while_processing_is_requeued_after_done(queue: WorkQueue) -> None:
    queue.add("a")
    assert queue.get(0) == "a"
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0, "never hand a key in flight to a second worker"
    queue.done("a")
    assert len(queue) == 1
    assert queue.get(0) == "a"
    queue.done("a")
    assert queue.get(timeout=0.01) is None


def test_get_times_out_with_none(queue: WorkQueue) -> None:
    started = time.monotonic()
    assert queue.get(timeout=0.05) is None
    assert time.monotonic() - started >= 0.05


def test_shutdown_wakes_blocked_getters_and_ignores_adds(queue: WorkQueue) -> None:
    results: list[str | None] = []
    getter = threading.Thread(target=lambda: results.append(queue.get()))
    getter.start()
    queue.shutdown()
    getter.join(2)
    assert results == [None]
    assert queue.shutting_down
    queue.add("a")
    assert len(queue) == 0
    assert queue.get(timeout=0) is None


def test_add_after_delivers_once_the_delay_passed(queue: WorkQueue) -> None:
    started = time.monotonic()
    queue.add_after("a", 0.05)
    assert len(queue) == 0
    assert queue.get(timeout=2) == "a"
    assert time.monotonic() - started >= 0.05


def test_add_after_earlier_deadline_wins_and_key_arrives_once(queue: WorkQueue) -> None:
    queue.add_after("a", 30)
    queue.add_after("a", 0.01)
    queue.add_after("a", 0.01)
    assert queue.get(timeout=2) == "a"
    queue.done("a")
    assert queue.get(timeout=0.05) is None


def test_add_after_zero_is_immediate(queue: WorkQueue) -> None:
    queue.add_after("a", 0)
    assert queue.get(timeout=0) == "a"


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(0, 0.005), (1, 0.01), (2, 0.02), (10, 5.12), (17, 655.36), (18, 1000.0), (200, 1000.0)],
    ids=["first", "second", "third", "eleventh", "below-cap", "capped", "huge-no-overflow"],
)
def test_item_exponential_backoff(failures: int, expected: float) -> None:
    limiter = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    for _ in range(failures):
        limiter.when("k")
    assert limiter.when("k") == pytest.approx(expected)
    assert limiter.num_requeues("k") == failures + 1


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [
        pytest.param(0, 0.0, id="none"),
        pytest.param(1, 0.5, id="first"),
        pytest.param(2, 1.0, id="doubles"),
        pytest.param(4, 4.0, id="doubles-again"),
        pytest.param(7, 30.0, id="capped"),
        pytest.param(10_000, 30.0, id="capped-without-overflow"),
    ],
)
def test_backoff_doubles_and_is_capped(failures: int, seconds: float) -> None:
    assert exponential_backoff(failures, initial=0.5, cap=30.0) == seconds


def test_item_backoff_is_per_key_and_forget_resets() -> None:
    limiter = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    limiter.when("a")
    limiter.when("a")
    assert limiter.when("b") == pytest.approx(0.005)
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(0.005)


def test_bucket_allows_burst_then_spaces_by_qps() -> None:
    limiter = BucketRateLimiter(qps=10, burst=2)
    assert limiter.when("a") == 0
    assert limiter.when("b") == 0
    assert limiter.when("c") == pytest.approx(0.1, abs=0.02)
    assert limiter.when("d") == pytest.approx(0.2, abs=0.02)


def test_max_of_takes_longest_and_forgets_all() -> None:
    limiter = MaxOfRateLimiter(ItemExponentialFailureRateLimiter(1.0, 100.0), BucketRateLimiter(1000, 1000))
    assert limiter.when("a") == pytest.approx(1.0)
    assert limiter.when("a") == pytest.approx(2.0)
    assert limiter.num_requeues("a") == 2
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0


def test_default_rate_limiter_starts_at_5ms() -> None:
    assert default_rate_limiter().when("k") == pytest.approx(0.005)


def test_add_rate_limited_backs_off_and_counts_retries(queue: WorkQueue, metrics: Metrics) -> None:
    queue.add_rate_limited("a")
    assert queue.get(timeout=2) == "a"
    queue.done("a")
    queue.add_rate_limited("a")
    assert queue.num_requeues("a") == 2
    assert queue.get(timeout=2) == "a"
    queue.forget("a")
    assert queue.num_requeues("a") == 0
    assert metrics.registry.get_sample_value("test_workqueue_retries_total", {"name": "q"}) == 2


def test_metrics_track_depth_and_adds(queue: WorkQueue, metrics: Metrics) -> None:
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert metrics.registry.get_sample_value("test_workqueue_depth", {"name": "q"}) == 2
    assert metrics.registry.get_sample_value("test_workqueue_adds_total", {"name": "q"}) == 2
    queue.get(0)
    assert metrics.registry.get_sample_value("test_workqueue_depth", {"name": "q"}) == 1


def test_concurrent_workers_never_process_one_key_twice_at_once(queue: WorkQueue) -> None:
    keys = [f"k{i}" for i in range(10)]
    in_flight: set[str] = set()
    overlaps: list[str] = []
    processed: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        while (key := queue.get()) is not None:
            with lock:
                if key in in_flight:
                    overlaps.append(key)
                in_flight.add(key)
            time.sleep(0.0005)  # widen the window in which a duplicate hand-out would show
            with lock:
                in_flight.discard(key)
                processed.append(key)
            queue.done(key)

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for w in workers:
        w.start()
    for _ in range(20):
        for key in keys:
            queue.add(key)
    assert wait_until(lambda: len(queue) == 0 and not in_flight and set(processed) == set(keys))
    queue.shutdown()
    for w in workers:
        w.join(2)
    assert overlaps == []
