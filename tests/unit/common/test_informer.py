"""Informer: list then watch, relist on Gone with a synthetic diff, backoff on errors, resync."""

from __future__ import annotations

import copy
import json
import queue as queue_mod
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controller_common import errors, objects
from controller_common.informer import Informer
from controller_common.kube import SERVICES, Resource
from controller_common.metrics import Metrics

END = object()


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return condition()


def svc(name: str, rv: str, ns: str = "qa", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv, "labels": labels}}


class FakeWatch:
    def __init__(self, events: queue_mod.Queue[Any]) -> None:
        self._events = events
        self._stopped = threading.Event()

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        while not self._stopped.is_set():
            try:
                item = self._events.get(timeout=0.01)
            except queue_mod.Empty:
                continue
            if item is END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        self._stopped.set()

    def close(self) -> None:
        self._stopped.set()


class FakeClient:
    """Our own boundary faked: scripted list results and one shared stream of watch events."""

    def __init__(self) -> None:
        self.lists: list[tuple[list[dict[str, Any]], str] | BaseException] = [([], "1")]
        self.events: queue_mod.Queue[Any] = queue_mod.Queue()
        self.list_calls = 0
        self.watch_rvs: list[str] = []

    def list(self, resource: Resource, namespace: str | None = None, **_: Any) -> Any:
        self.list_calls += 1
        result = self.lists.pop(0) if len(self.lists) > 1 else self.lists[0]
        if isinstance(result, BaseException):
            raise result
        items, rv = result
        return [dict(i) for i in items], rv

    def watch(self, resource: Resource, namespace: str | None = None, **kwargs: Any) -> FakeWatch:
        self.watch_rvs.append(kwargs["resource_version"])
        return FakeWatch(self.events)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def add(self, obj: dict[str, Any]) -> None:
        self._record("add", obj)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._record("update", new)

    def delete(self, obj: dict[str, Any]) -> None:
        self._record("delete", obj)

    def _record(self, kind: str, obj: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append((kind, obj["metadata"]["name"]))

    def snapshot(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.calls)


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def make(client: FakeClient, metrics: Metrics) -> Iterator[Callable[..., tuple[Informer, Recorder]]]:
    started: list[Informer] = []

    def factory(**kwargs: Any) -> tuple[Informer, Recorder]:
        kwargs.setdefault("resync_seconds", 0)
        informer = Informer(client, SERVICES, name="svc", backoff_base=0.01, metrics=metrics, **kwargs)  # type: ignore[arg-type]
        recorder = Recorder()
        informer.add_handler(recorder.add, recorder.update, recorder.delete)
        started.append(informer.start())
        return informer, recorder

    yield factory
    for informer in started:
        informer.stop()


def test_initial_list_fills_cache_and_notifies_adds(client: FakeClient, make: Any) -> None:
    client.lists = [([svc("a", "2"), svc("b", "3")], "5")]
    informer, recorder = make()
    assert informer.wait_for_sync(2)
    assert informer.has_synced()
    assert informer.keys() == ["qa/a", "qa/b"]
    assert sorted(recorder.snapshot()) == [("add", "a"), ("add", "b")]
    assert wait_until(lambda: client.watch_rvs == ["5"]), "watch starts at the list's resourceVersion"


def test_watch_events_update_cache_and_notify(client: FakeClient, make: Any) -> None:
    client.lists = [([svc("a", "2")], "5")]
    informer, recorder = make()
    assert informer.wait_for_sync(2)
    client.events.put(("ADDED", svc("b", "6")))
    client.events.put(("MODIFIED", svc("a", "7")))
    client.events.put(("DELETED", svc("b", "8")))
    assert wait_until(lambda: len(recorder.snapshot()) == 4)
    assert recorder.snapshot() == [("add", "a"), ("add", "b"), ("update", "a"), ("delete", "b")]
    assert informer.keys() == ["qa/a"]
    assert informer.get("qa/a")["metadata"]["resourceVersion"] == "7"  # type: ignore[index]
    assert informer.resource_version == "8"


def test_watch_resumes_from_last_resource_version_and_bookmarks(client: FakeClient, make: Any) -> None:
    informer, _ = make()
    assert informer.wait_for_sync(2)
    client.events.put(("ADDED", svc("a", "4")))
    client.events.put(("BOOKMARK", {"metadata": {"resourceVersion": "9"}}))
    client.events.put(END)  # the server closed the watch (timeoutSeconds)
    assert wait_until(lambda: client.watch_rvs == ["1", "9"])
    assert client.list_calls == 1, "a normal watch end does not relist"


def test_gone_relists_and_emits_the_difference(client: FakeClient, make: Any, metrics: Metrics) -> None:
    client.lists = [
        ([svc("keep", "2"), svc("change", "3"), svc("vanish", "4")], "5"),
        ([svc("keep", "2"), svc("change", "30"), svc("new", "31")], "40"),
    ]
    informer, recorder = make()
    assert informer.wait_for_sync(2)
    client.events.put(errors.Gone("too old"))
    assert wait_until(lambda: client.watch_rvs[-1:] == ["40"])
    assert sorted(recorder.snapshot()[3:]) == [("add", "new"), ("delete", "vanish"), ("update", "change")]
    assert informer.keys() == ["qa/change", "qa/keep", "qa/new"]
    assert metrics.registry.get_sample_value("test_informer_relists_total", {"resource": "services"}) == 2
    assert metrics.registry.get_sample_value("test_informer_errors_total", {"resource": "services"}) in (None, 0)


def test_watch_error_backs_off_counts_and_rewatches(client: FakeClient, make: Any, metrics: Metrics) -> None:
    informer, _ = make()
    assert informer.wait_for_sync(2)
    client.events.put(("ADDED", svc("a", "3")))
    client.events.put(errors.ConnectionFailed("reset"))
    assert wait_until(lambda: client.watch_rvs == ["1", "3"])
    assert client.list_calls == 1
    assert metrics.registry.get_sample_value("test_informer_errors_total", {"resource": "services"}) == 1


def test_list_errors_are_retried_until_synced(client: FakeClient, make: Any, metrics: Metrics) -> None:
    client.lists = [errors.ServerError("down", status=503), errors.ConnectionFailed("x"), ([svc("a", "2")], "3")]
    informer, _ = make()
    assert informer.wait_for_sync(3)
    assert client.list_calls == 3
    assert metrics.registry.get_sample_value("test_informer_errors_total", {"resource": "services"}) == 2


def test_not_synced_while_list_fails(client: FakeClient, make: Any) -> None:
    client.lists = [errors.Forbidden("rbac")]
    informer, _ = make()
    assert not informer.wait_for_sync(0.1)


def test_resync_calls_update_for_every_cached_object(client: FakeClient, make: Any) -> None:
    client.lists = [([svc("a", "2"), svc("b", "3")], "5")]
    _, recorder = make(resync_seconds=0.02)
    assert wait_until(lambda: {("update", "a"), ("update", "b")} <= set(recorder.snapshot()))


def test_reads_share_the_frozen_cache_and_a_write_into_it_fails_loudly(client: FakeClient, make: Any) -> None:
    listed = {**svc("a", "2", app="web"), "spec": {"ports": [{"port": 80}]}}
    listed["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Update"}]
    client.lists = [([listed], "5")]
    informer, _ = make()
    assert informer.wait_for_sync(2)
    cached = informer.get("qa/a")
    assert cached is informer.get("qa/a") is informer.list()[0] is informer.list_namespace("qa")[0]  # no copies
    for write in (
        lambda: cached["metadata"].__setitem__("name", "mutated"),
        lambda: informer.list()[0]["metadata"].update(namespace="mutated"),
        lambda: cached["metadata"]["labels"].pop("app", None),
        lambda: cached.setdefault("status", {}),
        lambda: cached["spec"]["ports"].append({"port": 1}),
    ):
        with pytest.raises(TypeError, match="frozen"):
            write()
    assert "managedFields" not in cached["metadata"]  # never read by a reconciler: not kept
    expected = {k: v for k, v in listed["metadata"].items() if k != "managedFields"}
    assert cached["metadata"] == expected and isinstance(cached, dict)
    mutable = objects.deep_copy(cached)
    mutable["metadata"]["name"] = "changed"
    mutable["spec"]["ports"].append({"port": 1})
    assert type(mutable) is dict and type(mutable["spec"]["ports"]) is list
    assert copy.deepcopy(cached) == cached and type(copy.deepcopy(cached)["metadata"]) is dict
    assert json.loads(json.dumps(cached)) == cached
    assert informer.get("qa/a")["metadata"]["name"] == "a"  # type: ignore[index]
    assert informer.get("qa/missing") is None


def test_namespace_and_custom_indexes(client: FakeClient, make: Any) -> None:
    client.lists = [([svc("a", "2", ns="x", app="web"), svc("b", "3", ns="y", app="web"), svc("c", "4", ns="x")], "5")]
    informer, _ = make()
    assert informer.wait_for_sync(2)
    informer.add_index("app", lambda o: [v for k, v in o["metadata"]["labels"].items() if k == "app"])
    assert [o["metadata"]["name"] for o in informer.list_namespace("x")] == ["a", "c"]
    assert [o["metadata"]["name"] for o in informer.by_index("app", "web")] == ["a", "b"]
    client.events.put(("DELETED", svc("a", "6", ns="x", app="web")))
    assert wait_until(lambda: [o["metadata"]["name"] for o in informer.by_index("app", "web")] == ["b"])
    assert [o["metadata"]["name"] for o in informer.list_namespace("x")] == ["c"]


def test_on_change_and_failing_handlers_do_not_stop_the_informer(client: FakeClient, make: Any) -> None:
    informer, recorder = make()
    seen: list[tuple[str, str]] = []

    def broken(obj: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    informer.add_handler(on_add=broken)
    informer.on_change(lambda event_type, obj: seen.append((event_type, obj["metadata"]["name"])))
    assert informer.wait_for_sync(2)
    client.events.put(("ADDED", svc("a", "2")))
    client.events.put(("MODIFIED", svc("a", "3")))
    client.events.put(("DELETED", svc("a", "4")))
    assert wait_until(lambda: len(seen) == 3)
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert recorder.snapshot() == [("add", "a"), ("update", "a"), ("delete", "a")]


def test_stop_ends_the_threads(client: FakeClient, metrics: Metrics) -> None:
    informer = Informer(client, SERVICES, name="svc", resync_seconds=10, metrics=metrics)  # type: ignore[arg-type]
    informer.start()
    assert informer.wait_for_sync(2)
    informer.stop(timeout=2)
    assert not any(t.is_alive() for t in informer._threads)


def test_watches_ending_at_once_without_events_back_off(client: FakeClient, make: Any) -> None:
    informer, _ = make()
    assert informer.wait_for_sync(2)
    for _ in range(5):
        client.events.put(END)  # five watches closed by the server immediately
    started = time.monotonic()
    assert wait_until(lambda: len(client.watch_rvs) >= 6)
    # Backoff 0.01 * (1, 2, 4, 8, 16) with >= 50% jitter: not a hot loop.
    assert time.monotonic() - started >= 0.1
    assert client.list_calls == 1
