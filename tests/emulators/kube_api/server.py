"""The HTTP front end: request pipeline, routing to discovery and REST, watch streaming.

A stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive and chunked watch streams, so
the official clients and kubectl connect unchanged. Each request goes through one pipeline:
authenticate (``rbac.Authenticator``: in the default allow-all mode any bearer token is its own user)
-> authorize (``KubeApiServer.authorize``: allow-all, or RBAC) -> fault injection -> handler ->
request log (with the user's name). Every error is a ``Status`` object.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from . import apply, discovery, managed_fields, protobuf, rbac, scale, tables, validation, watch
from .errors import ApiError, bad_request, method_not_allowed
from .routing import RequestInfo, resolve

if TYPE_CHECKING:
    from .cluster import KubeApiServer


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    status: int
    verb: str
    resource: str
    namespace: str
    name: str
    user_agent: str
    user: str = ""
    subresource: str = ""
    at: float = field(default=0.0, compare=False)

    @property
    def is_write(self) -> bool:
        return self.verb in ("create", "update", "patch", "delete", "deletecollection")


APPLY_PATCH = "application/apply-patch+yaml"
_NOT_FOUND = ApiError(404, "NotFound", "the server could not find the requested resource", details={})
_NOT_ACCEPTABLE = ApiError(
    406, "NotAcceptable", "the server was unable to respond with a content type that the client supports"
)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128  # the stdlib's 5 makes bursts of new connections wait for SYN retries

    def __init__(self, address: tuple[str, int], owner: KubeApiServer) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per connection, tracked so that ``stop()`` can join them."""
        thread = threading.Thread(target=self._serve_connection, args=(request, client_address), daemon=True)
        with self.conn_lock:
            self.connections.add(request)
            self.threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self.conn_lock:
                self.threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # clients and stop() hang up; that is not a server bug
            return
        super().handle_error(request, client_address)

    def join_threads(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.conn_lock:
            threads = list(self.threads)
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read request_log instead
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    # --- pipeline ----------------------------------------------------------------------------
    def _handle(self) -> None:
        owner = self.server.owner
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length) if length else b""
        path = unquote(split.path)  # names like system:discovery arrive percent-encoded
        info = resolve(self.command, path, query)
        self._info = info
        self._user = ""
        self._status = 0
        self._recorded = False
        self._protobuf = protobuf.codec() if protobuf.prefers_protobuf(self.headers.get("Accept", "")) else None
        try:
            user = owner.authenticate(self.headers.get("Authorization", ""))
            self._user = user.name
            owner.authorize(user, info)
            if owner.faults.latency_seconds:
                time.sleep(owner.faults.latency_seconds)
            if info.is_resource:
                fault = owner.faults.match(info.verb, info.resource)
                if fault is not None:
                    raise fault.error(info.resource, info.group, info.name)
                self._resource(info)
            else:
                self._non_resource(path)
        except ApiError as exc:
            self._send_json(exc.code, exc.status(), exc.headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # an emulator bug must still answer like a server, and be seen by tests
            owner.internal_errors.append(f"{self.command} {self.path}\n{traceback.format_exc()}")
            if not self._recorded:
                self._send_json(500, ApiError(500, "InternalError", f"Internal error occurred: {exc!r}").status())
        finally:
            if not self._recorded:
                self._record()

    def _record(self) -> None:
        info = self._info
        self._recorded = True
        self.server.owner._record(
            RequestRecord(
                method=self.command,
                path=info.path,
                query=info.query,
                status=self._status,
                verb=info.verb,
                resource=info.resource,
                namespace=info.namespace,
                name=info.name,
                user_agent=self.headers.get("User-Agent", ""),
                user=self._user,
                subresource=info.subresource,
                at=time.time(),
            )
        )

    def _send_json(
        self, code: int, body: Any, headers: dict[str, str] | Sequence[tuple[str, str]] | None = None
    ) -> None:
        data, content_type = self._encode(body)
        if data is None:
            code, data = 406, json.dumps(_NOT_ACCEPTABLE.status()).encode()
        self._status = code
        self._record()  # before the client can see the answer, so tests never race the log
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in headers.items() if isinstance(headers, dict) else headers or ():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _encode(self, body: Any) -> tuple[bytes | None, str]:
        """Protobuf when the client prefers it and the kind has a message; else JSON if acceptable."""
        if self._protobuf is not None and isinstance(body, dict):
            encoded = self._protobuf.encode(body)
            if encoded is not None:
                return encoded, protobuf.MEDIA_TYPE
            if not protobuf.accepts_json(self.headers.get("Accept", "")):
                return None, "application/json"  # a custom resource has no protobuf form: 406
        return json.dumps(body).encode(), "application/json"

    def _json_body(self) -> Any:
        """The decoded body; the paths of fields a JSON body repeats are left in ``self._duplicates``."""
        self._duplicates: list[str] = []
        ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        try:
            if ctype in ("application/yaml", "application/apply-patch+yaml"):
                return yaml.safe_load(self._body or b"null")
            if ctype == protobuf.MEDIA_TYPE:
                codec = protobuf.codec()
                if codec is None:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        f"the body of the request was in an unknown format - accepted media types include: "
                        f"application/json, application/yaml ({protobuf.UNAVAILABLE})",
                    )
                return codec.decode(self._body)
            if ctype != "application/json":  # protobuf / CBOR: clients fall back to JSON on 415
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - "
                    f"accepted media types include: application/json, application/yaml "
                    f"({ctype} given)",
                )
            body, self._duplicates = validation.loads_json(self._body)
            return body
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the body of the request could not be decoded: {exc}") from None

    # --- discovery and other non-resource paths ---------------------------------------------
    def _non_resource(self, path: str) -> None:
        reg = self.server.owner.registry
        parts = [p for p in path.strip("/").split("/") if p]
        if self.command not in ("GET", "HEAD"):
            raise method_not_allowed() if parts and parts[0] in ("api", "apis") else _NOT_FOUND
        body: Any = None
        if parts == ["version"]:
            body = discovery.VERSION_INFO
        elif parts == ["api"]:
            body = discovery.api_versions()
        elif parts == ["apis"]:
            body = discovery.api_group_list(reg)
        elif len(parts) == 2 and parts[0] == "api":
            body = discovery.api_resource_list(reg, "", parts[1])
        elif len(parts) == 2 and parts[0] == "apis":
            body = discovery.api_group(reg, parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            body = discovery.api_resource_list(reg, parts[1], parts[2])
        elif parts == ["openapi", "v3"]:
            body = discovery.openapi_v3_root(reg)
        elif parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            group, version = ("", parts[3]) if parts[2] == "api" else (parts[3], parts[4] if len(parts) == 5 else "")
            if version in reg.group_versions().get(group, []):
                body = discovery.openapi_v3_group_version(reg, group, version)
        elif parts in (["healthz"], ["readyz"], ["livez"]):
            data = b"ok"
            self._status = 200
            self._record()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if body is None:
            raise _NOT_FOUND
        self._send_json(200, body)

    # --- resources ---------------------------------------------------------------------------
    def _resource(self, info: RequestInfo) -> None:
        owner = self.server.owner
        if (info.group, info.version, info.resource) == ("authorization.k8s.io", "v1", "selfsubjectaccessreviews"):
            self._self_subject_access_review(info)
            return
        rt = owner.registry.lookup(info.group, info.version, info.resource)
        if rt is None:
            raise _NOT_FOUND
        ns = info.namespace if rt.namespaced else ""
        if rt.plural == "namespaces":
            ns = ""
        elif not rt.namespaced and info.namespace:
            raise _NOT_FOUND
        if rt.namespaced and not ns and info.verb not in ("list", "watch", "deletecollection"):
            raise _NOT_FOUND
        if info.subresource == "scale" and rt.plural == "deployments" and rt.builtin:
            self._scale(rt, ns, info)
            return
        if info.subresource and (info.subresource != "status" or not rt.status_subresource):
            raise _NOT_FOUND
        if info.subresource and info.verb not in ("get", "update", "patch"):
            raise method_not_allowed()
        api, query, verb = owner.api, dict(info.query), info.verb
        # unnamed writers are named after their User-Agent, as kube-apiserver names field managers
        if len(query.get("fieldManager", "")) > 128:
            options = {"create": "CreateOptions", "patch": "PatchOptions"}.get(verb, "UpdateOptions")
            raise ApiError(
                422,
                "Invalid",
                f'{options}.meta.k8s.io "" is invalid: fieldManager: Too long: may not be more than 128 bytes',
            )
        query["fieldManager"] = managed_fields.manager_for(
            query.get("fieldManager"), self.headers.get("User-Agent", "")
        )
        accept = self.headers.get("Accept", "")
        if verb == "get":
            obj = api.get(rt, ns, info.name)
            if tables.wants_table(accept):
                obj = tables.table(
                    rt, [obj], obj["metadata"]["resourceVersion"], query.get("includeObject", "Metadata")
                )
            self._send_json(200, obj)
        elif verb == "list":
            listed = api.list(rt, ns or None, query)
            if tables.wants_table(accept):
                items = [api.out(rt, o) for o in listed["items"]]
                listed = tables.table(
                    rt,
                    items,
                    listed["metadata"]["resourceVersion"],
                    query.get("includeObject", "Metadata"),
                    listed["metadata"].get("continue"),
                )
            self._send_json(200, listed)
        elif verb == "watch":
            if info.name:  # the deprecated watch of one object is a watch with a name field selector
                by_name = f"metadata.name={info.name}"
                query = dict(query, fieldSelector=",".join(filter(None, [query.get("fieldSelector"), by_name])))
            self._watch(rt, ns or None, query)
        elif verb == "create":
            if info.name:
                raise method_not_allowed()
            body = self._json_body()
            obj, warnings = api.create(rt, ns, body, query, duplicates=self._duplicates)
            self._send_json(201, obj, _warning_headers(warnings))
        elif verb == "update":
            body = self._json_body()
            obj, warnings = api.update(rt, ns, info.name, body, query, info.subresource, self._duplicates)
            self._send_json(200, obj, _warning_headers(warnings))
        elif verb == "patch" and self.headers.get("Content-Type", "").startswith(APPLY_PATCH) and not info.subresource:
            if not info.query.get("fieldManager"):
                raise bad_request("PATCH requests with apply-patch+yaml content type must specify fieldManager")
            obj, warnings, created = apply.server_side_apply(api, rt, ns, info.name, self._body, query)
            self._send_json(201 if created else 200, obj, _warning_headers(warnings))
        elif verb == "patch":
            obj, warnings = api.patch(
                rt, ns, info.name, self._body, self.headers.get("Content-Type", ""), query, info.subresource
            )
            self._send_json(200, obj, _warning_headers(warnings))
        elif verb == "delete":
            self._send_json(200, api.delete(rt, ns, info.name, self._delete_options(query)))
        elif verb == "deletecollection":
            self._send_json(200, api.delete_collection(rt, ns or None, query, self._delete_options(query)))
        else:
            raise method_not_allowed()

    def _self_subject_access_review(self, info: RequestInfo) -> None:
        """``kubectl auth can-i``: may the caller do this? Answered by the authorizer that guards requests."""
        if info.verb != "create" or info.name or info.namespace:
            raise _NOT_FOUND if info.name or info.namespace else method_not_allowed()
        review = self._json_body()
        if not isinstance(review, dict) or not isinstance(review.get("spec"), dict):
            raise bad_request("the body of the request could not be decoded as a SelfSubjectAccessReview")
        spec = review["spec"]
        resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if bool(resource) == bool(non_resource):
            raise ApiError(
                422,
                "Invalid",
                'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: '
                'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified',
            )
        if resource:
            attrs = rbac.Attributes(
                verb=resource.get("verb", ""),
                group=resource.get("group", ""),
                version=resource.get("version", ""),
                resource=resource.get("resource", ""),
                subresource=resource.get("subresource", ""),
                namespace=resource.get("namespace", ""),
                name=resource.get("name", ""),
            )
        else:
            attrs = rbac.Attributes(
                verb=non_resource.get("verb", ""), is_resource=False, path=non_resource.get("path", "")
            )
        owner = self.server.owner
        user = owner.authenticate(self.headers.get("Authorization", ""))
        allowed, reason = True, ""
        if owner.authorization == "rbac":
            allowed, reason = rbac.decide(user, attrs, owner._policy())
        status: dict[str, Any] = {"allowed": allowed}
        if not allowed:
            status["reason"] = reason or ""
        answer = {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }
        self._send_json(201, answer)

    def _scale(self, rt: Any, namespace: str, info: RequestInfo) -> None:
        api = self.server.owner.api
        manager = managed_fields.manager_for(info.query.get("fieldManager"), self.headers.get("User-Agent", ""))
        if info.verb == "get":
            self._send_json(200, scale.get(api, rt, namespace, info.name))
        elif info.verb == "update":
            self._send_json(200, scale.update(api, rt, namespace, info.name, self._json_body(), manager))
        elif info.verb == "patch":
            content_type = self.headers.get("Content-Type", "")
            self._send_json(200, scale.patch_scale(api, rt, namespace, info.name, self._body, content_type, manager))
        else:
            raise method_not_allowed()

    def _delete_options(self, query: dict[str, str]) -> dict[str, Any]:
        options = self._json_body() if self._body else {}
        if not isinstance(options, dict):
            raise bad_request("the body of the request could not be decoded as DeleteOptions")
        for key in ("propagationPolicy", "gracePeriodSeconds", "dryRun"):
            if key in query and key not in options:
                options[key] = query[key]
        if "orphanDependents" in query and "orphanDependents" not in options:
            options["orphanDependents"] = query["orphanDependents"].lower() == "true"
        return options

    def _watch(self, rt: Any, namespace: str | None, query: dict[str, str]) -> None:
        owner = self.server.owner
        req = watch.WatchRequest(rt, namespace, query, owner.watch_default_timeout)
        codec = self._protobuf if self._protobuf and self._protobuf.message_name(rt.api_version, rt.kind) else None
        self._status = 200
        self.send_response(200)
        self.send_header("Content-Type", f"{protobuf.MEDIA_TYPE};stream=watch" if codec else "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self._record()  # a watch is logged when it starts, not when it ends

        def write(event: dict[str, Any]) -> None:
            frame = codec.watch_frame(event["type"], event["object"]) if codec else None
            data = frame if frame is not None else watch.encode(event)
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def render(obj: dict[str, Any]) -> dict[str, Any]:
            full = owner.api.out(rt, obj)
            if not as_table:
                return full
            return tables.table(rt, [full], full["metadata"]["resourceVersion"], query.get("includeObject", "Metadata"))

        as_table = tables.wants_table(self.headers.get("Accept", ""))
        ended = watch.serve(owner.store, req, write, render, owner.bookmark_interval_seconds, lambda: owner.stopping)
        if ended == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        if ended == "close":
            self.close_connection = True


def _warning_headers(warnings: list[str]) -> list[tuple[str, str]]:
    """One ``Warning`` header per warning, as kube-apiserver sends them: ``299 - "<quoted text>"``."""
    return [
        ("Warning", f'299 - "{w.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"') for w in warnings
    ]
