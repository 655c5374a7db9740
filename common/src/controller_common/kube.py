"""The one door to the Kubernetes API: plain dicts in, plain dicts out, our errors on failure.

Why this exists: both controllers need get/list/watch/create/replace/patch/delete on a handful
of resources, including CRDs (Istio) whose served version is only known at run time. Going
through the generated client models would cost ~10x ``json.loads`` per object and tie every
caller to the client library. This module is the *only* importer of ``kubernetes`` (enforced
by import-linter); it borrows the client's kubeconfig / in-cluster loading, auth and connection
pool, and does the HTTP and JSON itself.

Guarantees:

- Every failure is an :class:`~controller_common.errors.ApiError` subclass mapped by
  :func:`~controller_common.errors.error_from_status`; transport failures are
  :class:`~controller_common.errors.ConnectionFailed` (status 0, transient).
- Only single idempotent reads (``get``, ``list``, ``server_preferred_version``) are retried
  here, for transport blips: a few jittered attempts, bounded in time. Writes are never retried
  here — the work queue retries whole reconciles (exactly two retry layers).
- Every write (create, replace, replace_status, patch) sends ``fieldValidation=Strict``: a field
  the server does not know is a :class:`~controller_common.errors.BadRequest` naming it, never a
  write that succeeds with the field silently dropped (the server's default, Warn).
- Listed items carry ``apiVersion`` and ``kind`` (the server omits them inside lists).
- A watch never hangs silently: its socket read timeout sits just above ``timeoutSeconds``, and
  410 (HTTP or an ``ERROR`` event) raises :class:`~controller_common.errors.Gone`.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import structlog
import tenacity
import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from controller_common import errors

log = structlog.get_logger(__name__)

T = TypeVar("T")

PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
# Extra seconds a watch's socket may stay silent beyond the server-side timeoutSeconds.
WATCH_READ_GRACE_SECONDS = 5.0
LIST_PAGE_SIZE = 500


@dataclass(frozen=True)
class Resource:
    """One API resource: enough to build its REST paths without discovery."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """``apps/v1`` for named groups, ``v1`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path; a namespaced resource without ``namespace`` means all namespaces."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        elif self.namespaced and name:
            raise ValueError(f"{self.kind} {name!r} is namespaced: a namespace is required")
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        elif subresource:
            raise ValueError("a subresource needs an object name")
        if subresource:
            base += f"/{subresource}"
        return base


DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
SERVICES = Resource("", "v1", "services", "Service")
PODS = Resource("", "v1", "pods", "Pod")
EVENTS = Resource("", "v1", "events", "Event")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
CUSTOM_RESOURCE_DEFINITIONS = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False
)


def _retry_transport_blip(exc: BaseException) -> bool:
    # A stale resourceVersion (Conflict) is not a blip; throttling and 5xx are.
    return isinstance(exc, (errors.ConnectionFailed, errors.ServerError, errors.TooManyRequests))


_jittered = tenacity.wait_random_exponential(multiplier=0.1, max=2.0)
MAX_RETRY_AFTER_SECONDS = 2.0


def _wait_for_retry(state: tenacity.RetryCallState) -> float:
    """Jittered exponential, but no sooner than the server's Retry-After (capped: reads are quick)."""
    exc = state.outcome.exception() if state.outcome else None
    retry_after = exc.retry_after if isinstance(exc, errors.ApiError) and exc.retry_after else 0.0
    return max(_jittered(state), min(retry_after, MAX_RETRY_AFTER_SECONDS))


class Watch(Iterator[tuple[str, dict[str, Any]]]):
    """An iterator of ``(event_type, object)``; :meth:`stop` may be called from another thread."""

    def __init__(self, response: urllib3.BaseHTTPResponse, resource: Resource) -> None:
        self._response = response
        self._resource = resource
        self._events = self._read()

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> tuple[str, dict[str, Any]]:
        return next(self._events)

    def stop(self) -> None:
        """Unblock a pending read and end the stream (safe from any thread)."""
        # Already closed or released to the pool: nothing left to unblock.
        with contextlib.suppress(Exception):
            self._response.shutdown()

    def close(self) -> None:
        self._events.close()

    def _read(self) -> Generator[tuple[str, dict[str, Any]], None, None]:
        buffer = b""
        try:
            while True:
                try:
                    chunk = self._response.read1(65536)
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise errors.ConnectionFailed(f"watch stream broken: {exc}") from exc
                if not chunk:
                    return  # server closed the watch (timeoutSeconds): caller re-watches
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield self._decode(line)
        finally:
            self._response.close()
            self._response.release_conn()

    def _decode(self, line: bytes) -> tuple[str, dict[str, Any]]:
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise errors.ConnectionFailed(f"undecodable watch event: {line[:200]!r}") from exc
        event_type = event.get("type", "")
        obj = event.get("object") or {}
        if event_type == "ERROR":
            code = int(obj.get("code") or 500)
            raise errors.error_from_status(code, obj)
        if event_type != "BOOKMARK":
            obj.setdefault("apiVersion", self._resource.api_version)
            obj.setdefault("kind", self._resource.kind)
        return event_type, obj


class KubeClient:
    """Dict-based access to the Kubernetes API; thread-safe (one connection pool)."""

    def __init__(
        self, api_client: k8s_client.ApiClient, *, request_timeout: float = 30.0, read_attempts: int = 3
    ) -> None:
        self._api = api_client
        self.request_timeout = request_timeout
        self.field_manager: str | None = None
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_retry_transport_blip),
            stop=tenacity.stop_after_attempt(read_attempts) | tenacity.stop_after_delay(request_timeout),
            wait=_wait_for_retry,
            before_sleep=lambda state: log.warning(
                "kube read retry",
                attempt=state.attempt_number,
                error=str(state.outcome.exception()) if state.outcome else None,
            ),
            reraise=True,
        )

    @classmethod
    def from_environment(
        cls, kubeconfig: str | None = None, context: str | None = None, *, request_timeout: float = 30.0
    ) -> KubeClient:
        """Explicit ``kubeconfig`` > ``$KUBECONFIG`` > in-cluster service account > ``~/.kube/config``."""
        configuration = k8s_client.Configuration()
        env_kubeconfig = os.environ.get("KUBECONFIG")
        if kubeconfig:
            k8s_config.load_kube_config(kubeconfig, context, client_configuration=configuration)  # type: ignore[no-untyped-call]
        elif env_kubeconfig:
            k8s_config.load_kube_config(env_kubeconfig, context, client_configuration=configuration)  # type: ignore[no-untyped-call]
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                os.path.expanduser("~/.kube/config"), context, client_configuration=configuration
            )
        # No hidden urllib3 retry layer: tenacity (reads) and the work queue (everything) retry.
        configuration.retries = False
        return cls(k8s_client.ApiClient(configuration), request_timeout=request_timeout)

    def identify(self, component: str, version: str) -> None:
        """Name our writes: ``fieldManager`` in managedFields and the User-Agent in audit logs, so
        GitOps tools (Argo CD ``managedFieldsManagers``) and operators can tell our changes apart."""
        self.field_manager = component
        self._api.user_agent = f"{component}/{version}"

    def _write_query(self) -> list[tuple[str, Any]]:
        # Strict, not the server's default Warn: a mistyped or too-new field is then a 400 naming it,
        # on a real cluster as in the tests, instead of a write that "succeeds" without the field.
        query: list[tuple[str, Any]] = [("fieldValidation", "Strict")]
        if self.field_manager:
            query.append(("fieldManager", self.field_manager))
        return query

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    def close(self) -> None:
        self._api.rest_client.close()

    # --- HTTP -------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, body, _ = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            rest_response = self._api.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                _request_timeout=timeout or self.request_timeout,
            )
        except ApiException as exc:  # the client's own failures (TLS, unusable body)
            if exc.status:
                raise errors.error_from_status(exc.status, exc.body, exc.headers) from exc
            raise errors.ConnectionFailed(f"{method} {path}: {exc.reason}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise errors.ConnectionFailed(f"{method} {path}: {exc}") from exc
        response: urllib3.BaseHTTPResponse = rest_response.response
        if response.status >= 400:
            try:
                data = response.data
            except (urllib3.exceptions.HTTPError, OSError):
                data = b""
            finally:
                response.release_conn()
            raise errors.error_from_status(response.status, data, response.headers)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, **kwargs)
        try:
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise errors.ConnectionFailed(f"{method} {path}: reading body: {exc}") from exc
        finally:
            response.release_conn()
        if not data:
            return {}
        try:
            decoded = json.loads(data)
        except ValueError as exc:
            raise errors.ServerError(f"{method} {path}: response is not JSON: {data[:200]!r}") from exc
        return decoded if isinstance(decoded, dict) else {"items": decoded}

    def _read(self, fn: Callable[[], T]) -> T:
        return self._retrying(fn)

    # --- verbs ------------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return self._read(lambda: self._json("GET", resource.path(namespace, name)))

    def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """All matching objects (paged under the hood) and the list's ``resourceVersion``."""
        base: list[tuple[str, Any]] = []
        if label_selector:
            base.append(("labelSelector", label_selector))
        if field_selector:
            base.append(("fieldSelector", field_selector))
        items: list[dict[str, Any]] = []
        resource_version = ""
        continue_token: str | None = None
        while True:
            query = [*base, ("limit", LIST_PAGE_SIZE)]
            if continue_token:
                query.append(("continue", continue_token))
            page = self._read(lambda q=query: self._json("GET", resource.path(namespace), query=q))  # type: ignore[misc]
            meta = page.get("metadata") or {}
            if not resource_version:
                # The first page's resourceVersion is the snapshot all pages belong to.
                resource_version = str(meta.get("resourceVersion") or "")
            for item in page.get("items") or []:
                item.setdefault("apiVersion", resource.api_version)
                item.setdefault("kind", resource.kind)
                items.append(item)
            continue_token = meta.get("continue") or None
            if not continue_token:
                return items, resource_version

    def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str,
        timeout_seconds: int = 300,
        label_selector: str | None = None,
        allow_bookmarks: bool = True,
    ) -> Watch:
        """Stream ``(type, object)`` from ``resource_version``; :class:`~errors.Gone` when expired."""
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", int(timeout_seconds)),
        ]
        if allow_bookmarks:
            query.append(("allowWatchBookmarks", "true"))
        if label_selector:
            query.append(("labelSelector", label_selector))
        response = self._send(
            "GET",
            resource.path(namespace),
            query=query,
            timeout=(self.request_timeout, timeout_seconds + WATCH_READ_GRACE_SECONDS),
        )
        return Watch(response, resource)

    def create(self, resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        body = self._with_type(resource, obj)
        namespace = (body.get("metadata") or {}).get("namespace")
        return self._json("POST", resource.path(namespace), body=body, query=self._write_query())

    def replace(self, resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the whole object; its ``metadata.resourceVersion`` makes a stale write a Conflict."""
        body = self._with_type(resource, obj)
        meta = body.get("metadata") or {}
        return self._json(
            "PUT", resource.path(meta.get("namespace"), meta.get("name")), body=body, query=self._write_query()
        )

    def replace_status(self, resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        body = self._with_type(resource, obj)
        meta = body.get("metadata") or {}
        return self._json(
            "PUT",
            resource.path(meta.get("namespace"), meta.get("name"), "status"),
            body=body,
            query=[("fieldValidation", "Strict")],
        )

    def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: dict[str, Any] | builtins.list[Any],
        *,
        patch_type: str = "merge",
    ) -> dict[str, Any]:
        """Patch with ``merge`` (RFC 7386), ``json`` (RFC 6902, a list) or ``strategic`` merge."""
        content_type = PATCH_CONTENT_TYPES.get(patch_type)
        if content_type is None:
            raise ValueError(f"unknown patch_type {patch_type!r}: use one of {sorted(PATCH_CONTENT_TYPES)}")
        if (patch_type == "json") != isinstance(patch, list):
            raise ValueError("a json patch is a list of operations; merge/strategic patches are objects")
        return self._json(
            "PATCH", resource.path(namespace, name), body=patch, content_type=content_type, query=self._write_query()
        )

    def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        propagation_policy: str = "Background",
        preconditions: dict[str, Any] | None = None,
    ) -> None:
        """Delete; raises NotFound when already gone (callers usually treat that as done)."""
        options: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": propagation_policy,
        }
        if preconditions:
            options["preconditions"] = preconditions
        self._json("DELETE", resource.path(namespace, name), body=options)

    def server_preferred_version(self, group: str, candidates: Sequence[str]) -> str | None:
        """The version of ``group`` to use: the server's preferred one if we know it, else the first
        of ``candidates`` (in our order of preference) that the server serves; ``None`` if none."""
        try:
            api_group = self._read(lambda: self._json("GET", f"/apis/{quote(group, safe='')}"))
        except errors.NotFound:
            return None
        served = {v.get("version") for v in api_group.get("versions") or [] if isinstance(v, dict)}
        preferred = (api_group.get("preferredVersion") or {}).get("version")
        if preferred in candidates:
            return str(preferred)
        return next((c for c in candidates if c in served), None)

    @staticmethod
    def _with_type(resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        body = dict(obj)
        body.setdefault("apiVersion", resource.api_version)
        body.setdefault("kind", resource.kind)
        return body
