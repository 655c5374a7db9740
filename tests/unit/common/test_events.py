"""Events: the core/v1 body, de-duplication of bursts, and never raising."""

from __future__ import annotations

import re
from typing import Any

import pytest

from controller_common import errors, events
from controller_common.events import EventRecorder, build_event
from controller_common.kube import EVENTS, Resource
from controller_common.metrics import Metrics

ORIGIN: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "echo", "namespace": "qa", "uid": "u-1", "resourceVersion": "42"},
}


class FakeClient:
    def __init__(self, fail: BaseException | None = None) -> None:
        self.created: list[tuple[Resource, dict[str, Any]]] = []
        self.fail = fail

    def create(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        if self.fail is not None:
            raise self.fail
        self.created.append((resource, obj))
        return obj


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def count(metrics: Metrics, result: str) -> float | None:
    return metrics.registry.get_sample_value("test_events_total", {"result": result})


def test_build_event_references_the_object() -> None:
    event = build_event(
        involved=ORIGIN,
        reason="CloneCreated",
        message="created",
        event_type="Normal",
        component="replicator",
        now="2026-01-01T00:00:00Z",
    )
    assert re.fullmatch(r"echo\.[0-9a-f]+", event["metadata"]["name"])
    assert event["metadata"]["namespace"] == "qa"
    assert event["involvedObject"] == {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "name": "echo",
        "namespace": "qa",
        "uid": "u-1",
        "resourceVersion": "42",
    }
    assert event["count"] == 1
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2026-01-01T00:00:00Z"
    assert event["source"]["component"] == "replicator"
    assert event["reportingComponent"] == "replicator"
    assert event["type"] == "Normal" and event["reason"] == "CloneCreated"


def test_long_messages_are_truncated() -> None:
    event = build_event(involved=ORIGIN, reason="R", message="x" * 5000, event_type="Warning", component="c", now="t")
    assert len(event["message"]) == events.MAX_MESSAGE_LENGTH


def test_record_creates_an_event(metrics: Metrics) -> None:
    client = FakeClient()
    recorder = EventRecorder(metrics=metrics)
    assert recorder.record(client, involved=ORIGIN, reason="R", message="m", component="c")  # type: ignore[arg-type]
    ((resource, body),) = client.created
    assert resource == EVENTS
    assert body["involvedObject"]["uid"] == "u-1"
    assert count(metrics, "created") == 1


@pytest.mark.parametrize(
    ("second", "advance", "created"),
    [
        ({"reason": "R", "message": "m"}, 1.0, 1),
        ({"reason": "R", "message": "m"}, 61.0, 2),
        ({"reason": "R", "message": "other"}, 1.0, 2),
        ({"reason": "Other", "message": "m"}, 1.0, 2),
        ({"reason": "R", "message": "m", "event_type": "Warning"}, 1.0, 2),
    ],
    ids=["identical-burst-deduplicated", "after-window", "other-message", "other-reason", "other-type"],
)
def test_dedup_window(metrics: Metrics, second: dict[str, str], advance: float, created: int) -> None:
    client, clock = FakeClient(), Clock()
    recorder = EventRecorder(window=60.0, clock=clock, metrics=metrics)
    recorder.record(client, involved=ORIGIN, reason="R", message="m", component="c")  # type: ignore[arg-type]
    clock.now += advance
    recorder.record(client, involved=ORIGIN, component="c", **second)  # type: ignore[arg-type]
    assert len(client.created) == created


@pytest.mark.parametrize(
    "failure",
    [errors.Forbidden("rbac"), errors.ConnectionFailed("down"), RuntimeError("bug")],
    ids=["forbidden", "connection", "unexpected"],
)
def test_record_never_raises_and_counts_failures(metrics: Metrics, failure: BaseException) -> None:
    client = FakeClient(fail=failure)
    recorder = EventRecorder(metrics=metrics)
    assert not recorder.record(client, involved=ORIGIN, reason="R", message="m", component="c")  # type: ignore[arg-type]
    assert count(metrics, "failed") == 1
    client.fail = None
    assert recorder.record(client, involved=ORIGIN, reason="R", message="m", component="c")  # type: ignore[arg-type]


def test_module_level_record_event_never_raises() -> None:
    client = FakeClient(fail=errors.ServerError("x", status=500))
    events.record_event(client, involved=ORIGIN, reason="Unique", message="module", component="c")  # type: ignore[arg-type]


class SlowClient(FakeClient):
    """An API server that answers only when the test lets it (a round trip the reconcile must not wait for)."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.release = threading.Event()

    def create(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        assert self.release.wait(10), "never released"
        return super().create(resource, obj)


def test_the_recorder_reconcilers_get_returns_at_once_and_the_events_follow_in_order() -> None:
    client = SlowClient()
    record = events.recorder_for(client, "replicator")  # type: ignore[arg-type]
    sender = record.__self__  # type: ignore[attr-defined]
    assert isinstance(sender, events.EventSender)
    for n in range(3):
        record({**ORIGIN, "metadata": {**ORIGIN["metadata"], "uid": f"u-{n}"}}, reason="CloneCreated", message=f"#{n}")
    assert client.created == [], "nothing written yet: the reconcile did not wait for the API server"
    client.release.set()
    assert sender.flush(5)
    assert [obj["message"] for _, obj in client.created] == ["#0", "#1", "#2"]


def test_beyond_the_bound_an_event_is_dropped_and_counted_not_waited_for(metrics: Metrics) -> None:
    client = SlowClient()
    sender = events.EventSender(client, "replicator", max_pending=2, metrics=metrics)  # type: ignore[arg-type]
    for n in range(5):  # one in flight at most, two pending, the rest dropped
        sender.send({**ORIGIN, "metadata": {**ORIGIN["metadata"], "uid": f"d-{n}"}}, reason="R", message=f"{n}")
    dropped = count(metrics, "dropped") or 0
    assert 2 <= dropped <= 3
    client.release.set()
    assert sender.flush(5)
    assert len(client.created) == 5 - dropped
