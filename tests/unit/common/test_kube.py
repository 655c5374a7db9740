"""KubeClient over real HTTP against a tiny scripted server: paths, verbs, errors, retries, watch.

The scripted server answers exactly what a test tells it to, so each test pins one behaviour of
the client (the kube API emulator covers the realistic end-to-end behaviour elsewhere).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from controller_common import errors, kube
from controller_common.kube import DEPLOYMENTS, NAMESPACES, SERVICES, KubeClient, Resource


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


# A reply is (status, json body) or a callable that writes the response itself.
Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]] | Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Script:
    routes: dict[tuple[str, str], list[Reply]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def on(self, method: str, path: str, *replies: Reply) -> None:
        self.routes[(method, path)] = list(replies)

    def of(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            script.requests.append(
                Request(
                    self.command,
                    url.path,
                    parse_qs(url.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
            )
            replies = script.routes.get((self.command, url.path)) or [(404, {"reason": "NotFound"})]
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
            if callable(reply):
                reply(self)
                return
            status, body, *extra = reply
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in (extra[0] if extra else {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


def stream(*events: dict[str, Any], hold: threading.Event | None = None) -> Callable[[Any], None]:
    """A chunked watch response sending ``events``, then holding the stream open until ``hold``."""

    def write(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for event in events:
            line = json.dumps(event).encode() + b"\n"
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            handler.wfile.flush()
        if hold is not None:
            hold.wait(5)
        handler.wfile.write(b"0\r\n\r\n")
        handler.close_connection = True

    return write


def write_kubeconfig(path: Path, url: str, token: str = "secret-token") -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": url}}],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    return path


@pytest.fixture
def script() -> Iterator[Script]:
    yield Script()


@pytest.fixture
def server_url(script: Script) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(server_url: str, tmp_path: Path) -> Iterator[KubeClient]:
    c = KubeClient.from_environment(str(write_kubeconfig(tmp_path / "kubeconfig", server_url)), request_timeout=5)
    yield c
    c.close()


STATUS_409_CONFLICT = {"kind": "Status", "code": 409, "reason": "Conflict", "message": "modified"}


@pytest.mark.parametrize(
    ("resource", "args", "path"),
    [
        (DEPLOYMENTS, ("qa", "echo", None), "/apis/apps/v1/namespaces/qa/deployments/echo"),
        (DEPLOYMENTS, (None, None, None), "/apis/apps/v1/deployments"),
        (SERVICES, ("qa", None, None), "/api/v1/namespaces/qa/services"),
        (DEPLOYMENTS, ("qa", "echo", "status"), "/apis/apps/v1/namespaces/qa/deployments/echo/status"),
        (NAMESPACES, (None, "qa", None), "/api/v1/namespaces/qa"),
        (NAMESPACES, ("ignored", "qa", None), "/api/v1/namespaces/qa"),
    ],
    ids=["named", "all-namespaces", "core-collection", "subresource", "cluster-scoped", "cluster-scoped-ns"],
)
def test_resource_path(resource: Resource, args: tuple[Any, Any, Any], path: str) -> None:
    assert resource.path(*args) == path


@pytest.mark.parametrize(
    ("resource", "api_version"),
    [(DEPLOYMENTS, "apps/v1"), (SERVICES, "v1")],
    ids=["group", "core"],
)
def test_api_version(resource: Resource, api_version: str) -> None:
    assert resource.api_version == api_version


def test_resource_path_requires_namespace_for_named_namespaced_object() -> None:
    with pytest.raises(ValueError):
        DEPLOYMENTS.path(None, "echo")


def test_get_returns_plain_dict_and_sends_bearer_token(client: KubeClient, script: Script) -> None:
    path = "/apis/apps/v1/namespaces/qa/deployments/echo"
    script.on("GET", path, (200, {"kind": "Deployment", "metadata": {"name": "echo"}}))
    obj = client.get(DEPLOYMENTS, "qa", "echo")
    assert obj == {"kind": "Deployment", "metadata": {"name": "echo"}}
    (request,) = script.of("GET", path)
    assert request.headers["authorization"] == "Bearer secret-token"
    assert request.headers["accept"] == "application/json"


def test_list_fills_type_follows_pages_and_keeps_first_resource_version(client: KubeClient, script: Script) -> None:
    path = "/api/v1/namespaces/qa/services"
    script.on(
        "GET",
        path,
        (200, {"metadata": {"resourceVersion": "10", "continue": "tok"}, "items": [{"metadata": {"name": "a"}}]}),
        (200, {"metadata": {"resourceVersion": "11"}, "items": [{"metadata": {"name": "b"}}]}),
    )
    items, rv = client.list(SERVICES, "qa", label_selector="app=echo")
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert all(i["apiVersion"] == "v1" and i["kind"] == "Service" for i in items)
    assert rv == "10"
    first, second = script.of("GET", path)
    assert first.query["labelSelector"] == ["app=echo"]
    assert "continue" not in first.query
    assert second.query["continue"] == ["tok"]


@pytest.mark.parametrize(
    ("verb", "status", "body", "expected"),
    [
        ("get", 404, {"reason": "NotFound", "message": "nope"}, errors.NotFound),
        ("get", 403, {"reason": "Forbidden"}, errors.Forbidden),
        ("create", 409, {"reason": "AlreadyExists"}, errors.AlreadyExists),
        ("replace", 409, STATUS_409_CONFLICT, errors.Conflict),
        ("replace", 422, {"reason": "Invalid"}, errors.Invalid),
        ("create", 415, {"reason": "UnsupportedMediaType"}, errors.UnsupportedMediaType),
    ],
    ids=["get-404", "get-403", "create-409", "replace-409", "replace-422", "create-415"],
)
def test_errors_are_mapped(
    client: KubeClient, script: Script, verb: str, status: int, body: Any, expected: type[errors.ApiError]
) -> None:
    obj = {"metadata": {"name": "echo", "namespace": "qa", "resourceVersion": "1"}}
    script.on("GET", "/api/v1/namespaces/qa/services/echo", (status, body))
    script.on("POST", "/api/v1/namespaces/qa/services", (status, body))
    script.on("PUT", "/api/v1/namespaces/qa/services/echo", (status, body))
    call = {
        "get": lambda: client.get(SERVICES, "qa", "echo"),
        "create": lambda: client.create(SERVICES, obj),
        "replace": lambda: client.replace(SERVICES, obj),
    }[verb]
    with pytest.raises(expected) as info:
        call()
    assert info.value.status == status


def test_reads_retry_transport_blips(client: KubeClient, script: Script) -> None:
    path = "/api/v1/namespaces/qa/services/echo"
    script.on("GET", path, (503, {"reason": "ServiceUnavailable"}), (200, {"metadata": {"name": "echo"}}))
    assert client.get(SERVICES, "qa", "echo")["metadata"]["name"] == "echo"
    assert len(script.of("GET", path)) == 2


def test_read_retry_honours_retry_after(client: KubeClient, script: Script) -> None:
    path = "/api/v1/namespaces/qa/services/echo"
    script.on("GET", path, (429, {"reason": "TooManyRequests"}, {"Retry-After": "0.3"}), (200, {"metadata": {}}))
    started = time.monotonic()
    client.get(SERVICES, "qa", "echo")
    assert time.monotonic() - started >= 0.3
    assert len(script.of("GET", path)) == 2


def test_reads_do_not_retry_client_errors(client: KubeClient, script: Script) -> None:
    path = "/api/v1/namespaces/qa/services/echo"
    script.on("GET", path, (404, {"reason": "NotFound"}))
    with pytest.raises(errors.NotFound):
        client.get(SERVICES, "qa", "echo")
    assert len(script.of("GET", path)) == 1


def test_writes_are_not_retried(client: KubeClient, script: Script) -> None:
    path = "/api/v1/namespaces/qa/services"
    script.on("POST", path, (503, {"reason": "ServiceUnavailable"}), (201, {}))
    with pytest.raises(errors.ServerError):
        client.create(SERVICES, {"metadata": {"name": "echo", "namespace": "qa"}})
    assert len(script.of("POST", path)) == 1


def test_create_and_replace_send_typed_bodies(client: KubeClient, script: Script) -> None:
    script.on("POST", "/api/v1/namespaces/qa/services", (201, {"metadata": {"uid": "u"}}))
    script.on("PUT", "/api/v1/namespaces/qa/services/echo", (200, {"metadata": {"resourceVersion": "2"}}))
    obj = {"metadata": {"name": "echo", "namespace": "qa", "resourceVersion": "1"}}
    assert client.create(SERVICES, obj) == {"metadata": {"uid": "u"}}
    assert client.replace(SERVICES, obj)["metadata"]["resourceVersion"] == "2"
    (post,) = script.of("POST", "/api/v1/namespaces/qa/services")
    (put,) = script.of("PUT", "/api/v1/namespaces/qa/services/echo")
    assert post.body["kind"] == "Service" and post.body["apiVersion"] == "v1"
    assert put.body["metadata"]["resourceVersion"] == "1"
    assert "apiVersion" not in obj, "the caller's dict is not mutated"


@pytest.mark.parametrize(
    ("patch_type", "patch", "content_type"),
    [
        ("merge", {"metadata": {"labels": {"a": "b"}}}, "application/merge-patch+json"),
        ("json", [{"op": "add", "path": "/metadata/labels/a", "value": "b"}], "application/json-patch+json"),
        ("strategic", {"spec": {"replicas": 2}}, "application/strategic-merge-patch+json"),
    ],
    ids=["merge", "json", "strategic"],
)
def test_patch_content_types(
    client: KubeClient, script: Script, patch_type: str, patch: Any, content_type: str
) -> None:
    path = "/apis/apps/v1/namespaces/qa/deployments/echo"
    script.on("PATCH", path, (200, {"metadata": {"name": "echo"}}))
    client.patch(DEPLOYMENTS, "qa", "echo", patch, patch_type=patch_type)
    (request,) = script.of("PATCH", path)
    assert request.headers["content-type"] == content_type
    assert request.body == patch


@pytest.mark.parametrize(
    ("patch_type", "patch"),
    [("json", {"a": 1}), ("merge", [{"op": "remove"}]), ("apply", {})],
    ids=["json-needs-list", "merge-needs-object", "unknown-type"],
)
def test_patch_rejects_mismatched_shapes(client: KubeClient, patch_type: str, patch: Any) -> None:
    with pytest.raises(ValueError):
        client.patch(DEPLOYMENTS, "qa", "echo", patch, patch_type=patch_type)


def test_delete_sends_delete_options(client: KubeClient, script: Script) -> None:
    path = "/api/v1/namespaces/qa/services/echo"
    script.on("DELETE", path, (200, {"kind": "Status", "status": "Success"}))
    client.delete(SERVICES, "qa", "echo", propagation_policy="Foreground", preconditions={"uid": "u"})
    (request,) = script.of("DELETE", path)
    assert request.body["propagationPolicy"] == "Foreground"
    assert request.body["preconditions"] == {"uid": "u"}


def test_connection_refused_is_connection_failed(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = KubeClient.from_environment(str(write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}")))
    with pytest.raises(errors.ConnectionFailed) as info:
        client.get(SERVICES, "qa", "echo")
    assert info.value.status == 0
    assert errors.is_transient(info.value)


WATCH_PATH = "/api/v1/namespaces/qa/services"


def test_watch_yields_events_with_type_filled_in(client: KubeClient, script: Script) -> None:
    script.on(
        "GET",
        WATCH_PATH,
        stream(
            {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "5"}}},
            {"type": "BOOKMARK", "object": {"kind": "Service", "metadata": {"resourceVersion": "6"}}},
            {"type": "DELETED", "object": {"metadata": {"name": "a", "resourceVersion": "7"}}},
        ),
    )
    events = list(client.watch(SERVICES, "qa", resource_version="4", timeout_seconds=30, label_selector="x=y"))
    assert [(t, o["metadata"]["resourceVersion"]) for t, o in events] == [
        ("ADDED", "5"),
        ("BOOKMARK", "6"),
        ("DELETED", "7"),
    ]
    assert events[0][1]["kind"] == "Service" and events[0][1]["apiVersion"] == "v1"
    (request,) = script.of("GET", WATCH_PATH)
    assert request.query["watch"] == ["true"]
    assert request.query["resourceVersion"] == ["4"]
    assert request.query["timeoutSeconds"] == ["30"]
    assert request.query["allowWatchBookmarks"] == ["true"]
    assert request.query["labelSelector"] == ["x=y"]


@pytest.mark.parametrize(
    "reply",
    [
        stream({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "old"}}),
        (410, {"kind": "Status", "code": 410, "reason": "Gone"}),
    ],
    ids=["error-event", "http-410"],
)
def test_watch_raises_gone(client: KubeClient, script: Script, reply: Reply) -> None:
    script.on("GET", WATCH_PATH, reply)
    with pytest.raises(errors.Gone):
        list(client.watch(SERVICES, "qa", resource_version="1"))


def test_silent_watch_times_out_on_the_client(
    client: KubeClient, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube, "WATCH_READ_GRACE_SECONDS", 0.2)
    release = threading.Event()
    script.on("GET", WATCH_PATH, stream(hold=release))
    try:
        with pytest.raises(errors.ConnectionFailed):
            list(client.watch(SERVICES, "qa", resource_version="1", timeout_seconds=0))
    finally:
        release.set()


def test_watch_stop_unblocks_a_pending_read(client: KubeClient, script: Script) -> None:
    release = threading.Event()
    script.on("GET", WATCH_PATH, stream({"type": "ADDED", "object": {"metadata": {"name": "a"}}}, hold=release))
    watch = client.watch(SERVICES, "qa", resource_version="1")
    assert next(watch)[0] == "ADDED"
    done = threading.Event()

    def drain() -> None:
        with contextlib.suppress(errors.ConnectionFailed):
            list(watch)
        done.set()

    threading.Thread(target=drain, daemon=True).start()
    watch.stop()
    try:
        assert done.wait(2), "stop() must end a blocked watch promptly"
    finally:
        release.set()


@pytest.mark.parametrize(
    ("group_doc", "candidates", "expected"),
    [
        (
            {"versions": [{"version": "v1"}, {"version": "v1beta1"}], "preferredVersion": {"version": "v1"}},
            ("v1", "v1beta1", "v1alpha3"),
            "v1",
        ),
        (
            {"versions": [{"version": "v1beta1"}, {"version": "v1alpha3"}], "preferredVersion": {"version": "v1beta1"}},
            ("v1", "v1beta1", "v1alpha3"),
            "v1beta1",
        ),
        (
            {"versions": [{"version": "v2"}, {"version": "v1alpha3"}], "preferredVersion": {"version": "v2"}},
            ("v1", "v1beta1", "v1alpha3"),
            "v1alpha3",
        ),
        ({"versions": [{"version": "v2"}], "preferredVersion": {"version": "v2"}}, ("v1",), None),
    ],
    ids=["preferred-known", "preferred-older", "preferred-unknown-falls-back", "none-served"],
)
def test_server_preferred_version(
    client: KubeClient, script: Script, group_doc: dict[str, Any], candidates: tuple[str, ...], expected: str | None
) -> None:
    script.on("GET", "/apis/networking.istio.io", (200, {"kind": "APIGroup", **group_doc}))
    assert client.server_preferred_version("networking.istio.io", candidates) == expected


def test_server_preferred_version_of_missing_group_is_none(client: KubeClient) -> None:
    assert client.server_preferred_version("networking.istio.io", ("v1",)) is None


def test_from_environment_prefers_explicit_kubeconfig_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = write_kubeconfig(tmp_path / "env", "http://env.invalid:1")
    explicit = write_kubeconfig(tmp_path / "explicit", "http://explicit.invalid:2")
    monkeypatch.setenv("KUBECONFIG", str(env))
    assert KubeClient.from_environment().host == "http://env.invalid:1"
    assert KubeClient.from_environment(str(explicit)).host == "http://explicit.invalid:2"
