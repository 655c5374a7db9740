"""Watch: resume from resourceVersion, timeouts, bookmarks, selectors, 410 Gone after compaction."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest
from kubernetes import client, watch

from emulators.kube_api import KubeApiServer
from emulators.kube_api.testing import service, wait_for


def raw_watch(server: KubeApiServer, path: str, count: int | None = None, timeout: float = 5) -> list[dict[str, Any]]:
    """Read ``count`` events of a watch stream with urllib, or all of it until the server ends it."""
    with urllib.request.urlopen(server.url + path, timeout=timeout) as resp:
        assert resp.headers["Transfer-Encoding"] == "chunked"
        if count is None:
            return [json.loads(line) for line in resp.read().splitlines() if line.strip()]
        return [json.loads(resp.readline()) for _ in range(count)]


def typed_watch(func: Any, *args: Any, count: int, **kwargs: Any) -> list[dict[str, Any]]:
    """The first ``count`` events of a kubernetes-client watch."""
    w = watch.Watch()
    events = []
    for event in w.stream(func, *args, timeout_seconds=5, **kwargs):
        events.append(event)
        if len(events) == count:
            w.stop()
    return events


def test_watch_without_resource_version_starts_with_current_state(core: client.CoreV1Api) -> None:
    core.create_namespaced_service("default", service("a"))
    core.create_namespaced_service("default", service("b"))
    events = typed_watch(core.list_namespaced_service, "default", count=2)
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_from_resource_version_replays_later_events(core: client.CoreV1Api) -> None:
    listed = core.list_namespaced_service("default")
    core.create_namespaced_service("default", service("a"))
    core.patch_namespaced_service("a", "default", {"metadata": {"labels": {"x": "y"}}})
    core.delete_namespaced_service("a", "default")
    events = typed_watch(
        core.list_namespaced_service, "default", count=3, resource_version=listed.metadata.resource_version
    )
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e["object"].metadata.resource_version) for e in events]
    assert rvs == sorted(rvs)


def test_live_events_arrive_while_watching(core: client.CoreV1Api) -> None:
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume() -> None:
        for e in w.stream(core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5):
            seen.append((e["type"], e["object"].metadata.name))
            if len(seen) == 2:
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    core.create_namespaced_config_map("default", {"metadata": {"name": "live"}})
    core.delete_namespaced_config_map("live", "default")
    t.join(timeout=5)
    assert seen == [("ADDED", "live"), ("DELETED", "live")]


def test_timeout_seconds_ends_the_stream(server: KubeApiServer) -> None:
    events = raw_watch(server, "/api/v1/namespaces/default/services?watch=1&timeoutSeconds=1&resourceVersion=0")
    assert events == []


def test_bookmarks_carry_only_the_resource_version(server: KubeApiServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_service("default", service("a"))
    rv = server.resource_version
    events = raw_watch(
        server,
        f"/api/v1/namespaces/default/services?watch=true&resourceVersion={rv}&allowWatchBookmarks=true",
        count=1,
    )
    assert events[0]["type"] == "BOOKMARK"  # the periodic one (0.2 s in these tests)
    assert events[0]["object"] == {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": str(server.resource_version)},
    }


def test_a_bookmark_is_sent_before_the_server_closes(server: KubeApiServer) -> None:
    events = raw_watch(
        server,
        "/api/v1/namespaces/default/services?watch=true&resourceVersion=0&timeoutSeconds=1&allowWatchBookmarks=true",
    )
    assert events[-1]["type"] == "BOOKMARK"


def test_streaming_list_ends_initial_events_with_a_marked_bookmark(
    server: KubeApiServer, core: client.CoreV1Api
) -> None:
    core.create_namespaced_service("default", service("a"))
    events = raw_watch(
        server,
        "/api/v1/namespaces/default/services?watch=true&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
        count=2,
    )
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_no_bookmarks_unless_asked(server: KubeApiServer) -> None:
    events = raw_watch(server, "/api/v1/namespaces/default/services?watch=true&timeoutSeconds=1")
    assert all(e["type"] != "BOOKMARK" for e in events)


def test_too_old_resource_version_gets_410_error_event(server: KubeApiServer, core: client.CoreV1Api) -> None:
    old = core.list_namespaced_service("default").metadata.resource_version
    core.create_namespaced_service("default", service("a"))
    server.compact()
    events = raw_watch(server, f"/api/v1/namespaces/default/services?watch=true&resourceVersion={old}")
    assert len(events) == 1
    error = events[0]
    assert error["type"] == "ERROR"
    assert error["object"]["kind"] == "Status"
    assert (error["object"]["code"], error["object"]["reason"]) == (410, "Expired")
    assert "too old resource version" in error["object"]["message"]


def test_bounded_history_expires_old_resource_versions() -> None:
    with KubeApiServer(history_size=3) as server:
        start = server.resource_version
        rt = server.registry.lookup("", "v1", "configmaps")
        assert rt is not None
        for i in range(5):
            server.api.create(rt, "default", {"metadata": {"name": f"c{i}"}}, {})
        events = raw_watch(server, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={start}")
        assert [e["type"] for e in events] == ["ERROR"]
        recent = server.resource_version - 2
        events = raw_watch(
            server, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={recent}", count=2
        )
        assert [e["object"]["metadata"]["name"] for e in events] == ["c3", "c4"]


def test_python_client_raises_410_on_expired_watch(server: KubeApiServer, core: client.CoreV1Api) -> None:
    old = core.list_namespaced_service("default").metadata.resource_version
    core.create_namespaced_service("default", service("a"))
    server.compact()
    with pytest.raises(client.ApiException) as err:
        list(watch.Watch().stream(core.list_namespaced_service, "default", resource_version=old, timeout_seconds=1))
    assert err.value.status == 410


def test_label_selector_turns_unmatching_changes_into_added_and_deleted(
    server: KubeApiServer, core: client.CoreV1Api
) -> None:
    rv = server.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "c", "labels": {"team": "a"}}})
    core.patch_namespaced_config_map("c", "default", {"metadata": {"labels": {"team": "b"}}})
    core.patch_namespaced_config_map("c", "default", {"metadata": {"labels": {"team": "a"}}})
    events = raw_watch(
        server,
        f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&labelSelector=team%3Da",
        count=3,
    )
    assert [e["type"] for e in events] == ["ADDED", "DELETED", "ADDED"]


def test_field_selector_on_name_filters_watch(server: KubeApiServer, core: client.CoreV1Api) -> None:
    rv = server.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "one"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "two"}})
    events = raw_watch(
        server,
        f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dtwo",
        count=1,
    )
    assert [e["object"]["metadata"]["name"] for e in events] == ["two"]


def test_watch_across_namespaces(server: KubeApiServer, core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "other"}})
    rv = server.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    core.create_namespaced_config_map("other", {"metadata": {"name": "b"}})
    events = raw_watch(server, f"/api/v1/configmaps?watch=true&resourceVersion={rv}", count=2)
    assert [(e["object"]["metadata"]["namespace"], e["object"]["metadata"]["name"]) for e in events] == [
        ("default", "a"),
        ("other", "b"),
    ]


def test_legacy_watch_path(server: KubeApiServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    events = raw_watch(server, "/api/v1/watch/namespaces/default/configmaps", count=1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]


def test_stop_ends_open_watches(core: client.CoreV1Api) -> None:
    server = KubeApiServer().start()
    done = threading.Event()

    def consume() -> None:
        raw_watch(server, "/api/v1/namespaces/default/configmaps?watch=true", timeout=10)
        done.set()

    t = threading.Thread(target=consume)
    t.start()
    wait_for(lambda: any(r.verb == "watch" for r in server.request_log))
    server.stop()
    t.join(timeout=5)
    assert done.is_set()


def test_watch_of_one_named_object(server: KubeApiServer, core: client.CoreV1Api) -> None:
    rv = server.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "other"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "mine"}})
    events = raw_watch(server, f"/api/v1/namespaces/default/configmaps/mine?watch=true&resourceVersion={rv}", count=1)
    assert events[0]["object"]["metadata"]["name"] == "mine"


def test_typed_client_receives_bookmarks(server: KubeApiServer, core: client.CoreV1Api) -> None:
    rv = core.list_namespaced_service("default").metadata.resource_version
    events = typed_watch(
        core.list_namespaced_service, "default", count=1, resource_version=rv, allow_watch_bookmarks=True
    )
    assert events[0]["type"] == "BOOKMARK"
    assert events[0]["raw_object"]["metadata"]["resourceVersion"] == str(server.resource_version)


def test_timeout_seconds_zero_means_the_server_default(server: KubeApiServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    events = raw_watch(server, "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=0", count=1)
    assert events[0]["type"] == "ADDED"
