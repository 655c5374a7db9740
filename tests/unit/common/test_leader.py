"""Lease leader election: acquire, respect a live holder, take over an expired one, release, lose."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from controller_common import errors
from controller_common.kube import LEASES, Resource
from controller_common.leader import LeaderElector, micro_time
from controller_common.metrics import Metrics


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return condition()


class FakeLeases:
    """Leases with the API server's optimistic concurrency: a stale resourceVersion is a Conflict."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.rv = 0
        self.fail: BaseException | None = None
        self.lock = threading.Lock()

    def _key(self, obj: dict[str, Any]) -> tuple[str, str]:
        return obj["metadata"]["namespace"], obj["metadata"]["name"]

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        assert resource == LEASES
        with self.lock:
            if self.fail is not None:
                raise self.fail
            if (namespace, name) not in self.objects:
                raise errors.NotFound("lease")
            return copy.deepcopy(self.objects[(namespace, name)])

    def create(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if self._key(obj) in self.objects:
                raise errors.AlreadyExists("lease")
            self.rv += 1
            stored = copy.deepcopy(obj)
            stored["metadata"]["resourceVersion"] = str(self.rv)
            self.objects[self._key(obj)] = stored
            return copy.deepcopy(stored)

    def replace(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if self.fail is not None:
                raise self.fail
            current = self.objects[self._key(obj)]
            if current["metadata"]["resourceVersion"] != obj["metadata"].get("resourceVersion"):
                raise errors.Conflict("stale")
            self.rv += 1
            stored = copy.deepcopy(obj)
            stored["metadata"]["resourceVersion"] = str(self.rv)
            self.objects[self._key(obj)] = stored
            return copy.deepcopy(stored)

    def spec(self) -> dict[str, Any]:
        return dict(self.objects[("ns", "lock")]["spec"])


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def leases() -> FakeLeases:
    return FakeLeases()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def elector(leases: FakeLeases, identity: str, clock: Callable[[], float] | None = None, **kw: Any) -> LeaderElector:
    kw.setdefault("lease_duration", 15.0)
    kw.setdefault("renew_deadline", 10.0)
    kw.setdefault("retry_period", 2.0)
    if clock is not None:
        kw["clock"] = clock
    kw.setdefault("metrics", Metrics("t"))
    return LeaderElector(leases, name="lock", namespace="ns", identity=identity, **kw)  # type: ignore[arg-type]


def test_first_candidate_creates_the_lease(leases: FakeLeases, clock: Clock) -> None:
    a = elector(leases, "a", clock)
    assert a.try_acquire_or_renew()
    spec = leases.spec()
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert spec["acquireTime"] == spec["renewTime"]


def test_live_holder_keeps_the_lease_and_expired_holder_loses_it(leases: FakeLeases, clock: Clock) -> None:
    a, b = elector(leases, "a", clock), elector(leases, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew(), "held and fresh"
    clock.now += 10
    assert a.try_acquire_or_renew(), "the holder renews"
    clock.now += 10
    assert not b.try_acquire_or_renew(), "b saw the renewal change the record 10s ago (< 15s)"
    clock.now += 16
    assert b.try_acquire_or_renew(), "no renewal observed for a full lease duration"
    spec = leases.spec()
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1


def test_expiry_is_judged_from_first_observation_not_wall_clock(leases: FakeLeases, clock: Clock) -> None:
    leases.create(
        LEASES,
        {
            "metadata": {"name": "lock", "namespace": "ns"},
            "spec": {"holderIdentity": "old", "leaseDurationSeconds": 15, "renewTime": "2000-01-01T00:00:00.000000Z"},
        },
    )
    b = elector(leases, "b", clock)
    assert not b.try_acquire_or_renew(), "an ancient renewTime alone proves nothing (clock skew)"
    clock.now += 15.1
    assert b.try_acquire_or_renew()


def test_a_racing_writer_wins_and_the_loser_gets_no_lease(leases: FakeLeases, clock: Clock) -> None:
    a, b = elector(leases, "a", clock), elector(leases, "b", clock)
    a.try_acquire_or_renew()
    original_replace = leases.replace

    def racing_replace(resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        leases.replace = original_replace  # type: ignore[method-assign]
        a.try_acquire_or_renew()  # a renews between b's read and b's write
        return original_replace(resource, obj)

    clock.now += 16
    leases.replace = racing_replace  # type: ignore[method-assign]
    assert not b.try_acquire_or_renew()
    assert leases.spec()["holderIdentity"] == "a"


def test_release_lets_a_successor_in_at_once(leases: FakeLeases, clock: Clock) -> None:
    a, b = elector(leases, "a", clock), elector(leases, "b", clock)
    a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    a.release()
    assert leases.spec()["holderIdentity"] == ""
    assert b.try_acquire_or_renew()


def test_release_does_not_touch_someone_elses_lease(leases: FakeLeases, clock: Clock) -> None:
    a, b = elector(leases, "a", clock), elector(leases, "b", clock)
    a.try_acquire_or_renew()
    b.release()
    assert leases.spec()["holderIdentity"] == "a"


def test_api_errors_are_failed_attempts(leases: FakeLeases, clock: Clock) -> None:
    a = elector(leases, "a", clock)
    a.try_acquire_or_renew()
    leases.fail = errors.ServerError("down", status=503)
    assert not a.try_acquire_or_renew()


FAST = {"lease_duration": 0.5, "renew_deadline": 0.2, "retry_period": 0.01}


def test_renew_until_lost_returns_false_when_renewals_keep_failing(leases: FakeLeases, metrics: Metrics) -> None:
    a = elector(leases, "a", metrics=metrics, **FAST)
    assert a.acquire(threading.Event())
    assert a.is_leader()
    assert metrics.registry.get_sample_value("test_leader_election_master_status", {"name": "lock"}) == 1
    leases.fail = errors.ConnectionFailed("partition")
    started = time.monotonic()
    assert a.renew_until_lost(threading.Event()) is False
    assert time.monotonic() - started >= 0.2
    assert not a.is_leader()
    assert metrics.registry.get_sample_value("test_leader_election_master_status", {"name": "lock"}) == 0


def test_renew_until_lost_returns_false_at_once_when_another_holder_appears(leases: FakeLeases) -> None:
    a = elector(leases, "a", **FAST)
    assert a.acquire(threading.Event())
    stolen = leases.get(LEASES, "ns", "lock")
    stolen["spec"]["holderIdentity"] = "intruder"
    stolen["spec"]["renewTime"] = micro_time()
    leases.replace(LEASES, stolen)
    assert a.renew_until_lost(threading.Event()) is False


def test_acquire_gives_up_on_stop(leases: FakeLeases) -> None:
    a, b = elector(leases, "a", **FAST), elector(leases, "b", **FAST)
    assert a.acquire(threading.Event())
    stop = threading.Event()
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(b.acquire(stop)))
    waiter.start()
    stop.set()
    waiter.join(2)
    assert result == [False]


def test_run_leads_until_stopped_then_releases(leases: FakeLeases) -> None:
    a = elector(leases, "a", **FAST)
    stop = threading.Event()
    leading_events: list[threading.Event] = []
    stopped: list[bool] = []

    def lead(leading_ended: threading.Event) -> None:
        leading_events.append(leading_ended)
        leading_ended.wait()

    outcome: list[bool] = []
    runner = threading.Thread(
        target=lambda: outcome.append(
            a.run(stop, on_started_leading=lead, on_stopped_leading=lambda: stopped.append(True))
        )
    )
    runner.start()
    assert wait_until(lambda: bool(leading_events))
    stop.set()
    runner.join(3)
    assert outcome == [True]
    assert stopped == [True]
    assert leading_events[0].is_set()
    assert leases.spec()["holderIdentity"] == ""


@pytest.mark.parametrize(
    ("durations"),
    [(15.0, 15.0, 2.0), (15.0, 10.0, 10.0), (5.0, 10.0, 2.0)],
    ids=["deadline-equals-duration", "retry-equals-deadline", "deadline-above-duration"],
)
def test_timing_must_leave_margins(leases: FakeLeases, durations: tuple[float, float, float]) -> None:
    duration, deadline, retry = durations
    with pytest.raises(ValueError):
        elector(leases, "a", lease_duration=duration, renew_deadline=deadline, retry_period=retry)
