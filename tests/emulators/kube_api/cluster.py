"""``KubeApiServer``: the emulated cluster's public face for tests, the demo and the sandbox.

It wires the store, the registry of kinds, the REST layer, the HTTP server and the in-process
controllers (garbage collector, deployment controller), and offers test helpers (request log,
fault injection, object snapshots, compaction) that a real cluster does not have.
"""

from __future__ import annotations

import copy
import ssl
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import kubeconfig, rbac
from .crds import gateway_api_crd_paths, load_crd_files
from .deployments import DeploymentController
from .errors import ApiError
from .faults import Faults
from .gc import GarbageCollector
from .images import ImageRegistry
from .resources import Registry
from .rest import Api
from .routing import RequestInfo
from .server import RequestRecord, _HttpServer
from .store import Store, Watcher
from .tls import self_signed, server_context
from .workloads import Tuning

CRD_GROUP, CRD_VERSION, CRD_PLURAL = "apiextensions.k8s.io", "v1", "customresourcedefinitions"


class KubeApiServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        history_size: int = 1000,
        deployment_delay_seconds: float = 0.05,
        pod_ready_seconds: float = 0.02,
        time_scale: float = 1.0,
        bookmark_interval_seconds: float = 1.0,
        watch_default_timeout: float = 1800.0,
        tls: bool = False,
        authorization: str = "allow-all",
        admin_token: str = "admin-token",
    ) -> None:
        if authorization not in ("allow-all", "rbac"):
            raise ValueError(f"authorization must be 'allow-all' or 'rbac', not {authorization!r}")
        self.host, self.port = host, port
        self.authorization = authorization
        self.store = Store(history_size)
        self.registry = Registry()
        self.api = Api(self.store, self.registry)
        self.faults = Faults(self._drop_watches)
        self.bookmark_interval_seconds = bookmark_interval_seconds
        self.watch_default_timeout = watch_default_timeout
        self.stopping = False
        self.tls = tls
        self.ca_pem: bytes | None = None  # the self-signed certificate, when serving HTTPS
        self._tls_context: ssl.SSLContext | None = None
        if tls:
            self.ca_pem, key_pem = self_signed(host)
            self._tls_context = server_context(self.ca_pem, key_pem)
        self._log: list[RequestRecord] = []
        self.internal_errors: list[str] = []  # tracebacks of emulator bugs answered as 500; tests assert none
        self._log_lock = threading.Lock()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self.gc = GarbageCollector(self.api)
        self.images = ImageRegistry()  # every image exists until a test says otherwise
        self._tuning = Tuning(time_scale=time_scale, pod_ready_seconds=pod_ready_seconds)
        self.deployments = DeploymentController(
            self.api, deployment_delay_seconds, images=self.images, tuning=self._tuning, errors=self.internal_errors
        )
        for name in ("default", "kube-system", "kube-public"):
            self._create("", "v1", "namespaces", "", {"metadata": {"name": name}})
        self.authenticator = rbac.Authenticator(authorization == "rbac", self._service_account_exists)
        if authorization == "rbac":
            self.authenticator.add(admin_token, rbac.ADMIN_USER)
            for plural, obj in rbac.bootstrap_policy():
                self._create(rbac.RBAC_GROUP, "v1", plural, "", obj)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> KubeApiServer:
        self.stopping = False
        self._httpd = _HttpServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        if self._tls_context is not None:  # handshakes happen lazily, in each connection's thread
            self._httpd.socket = self._tls_context.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="kube-api-emulator", daemon=True
        )
        self._thread.start()
        self.gc.start()
        self.deployments.start()
        return self

    def stop(self) -> None:
        self.stopping = True
        self.store.close_watchers(Watcher.CLOSE)
        self.gc.stop()
        self.deployments.stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.close_connections()
            self._httpd.server_close()
            self._httpd.join_threads(timeout=5)
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def time_scale(self) -> float:
        """How Kubernetes durations pass here: 0.01 makes a 600 s progress deadline 6 s (and back-offs too)."""
        return self._tuning.time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        self._tuning.time_scale = value

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def write_kubeconfig(self, path: str | Path, token: str = "admin-token") -> Path:
        return kubeconfig.write(path, self.url, token, ca_pem=self.ca_pem)

    # --- identities ----------------------------------------------------------------------------
    def add_service_account_token(self, token: str, namespace: str, name: str) -> str:
        """``token`` authenticates as the ServiceAccount (while it exists, in RBAC mode); returns the user name."""
        user = rbac.service_account_user(namespace, name)
        self.authenticator.add(token, user)
        return user.name

    def add_user_token(self, token: str, user: str, groups: Iterable[str] = ()) -> None:
        """``token`` authenticates as ``user`` in ``groups`` (plus ``system:authenticated``)."""
        self.authenticator.add(token, rbac.UserInfo(user, (*groups, rbac.AUTHENTICATED)))

    def _service_account_exists(self, namespace: str, name: str) -> bool:
        return self.store.get("serviceaccounts", namespace, name) is not None

    # --- request pipeline hooks --------------------------------------------------------------
    def authenticate(self, authorization_header: str) -> rbac.UserInfo:
        """The user of a request's ``Authorization`` header; raises 401 for a token RBAC mode does not know."""
        return self.authenticator.authenticate(authorization_header)

    def authorize(self, user: rbac.UserInfo, info: RequestInfo) -> None:
        """Allow everything (``allow-all``), or raise 403 unless RBAC allows it (``rbac``)."""
        if self.authorization == "rbac":
            rbac.authorize(user, info, self._policy)

    def _policy(self) -> rbac.Policy:
        with self.store.lock:
            return rbac.policy_from_store(self.store.list)

    def _record(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._log.append(record)

    @property
    def request_log(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._log)

    def clear_request_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def _drop_watches(self) -> None:
        self.store.close_watchers(Watcher.DROP)

    # --- test helpers --------------------------------------------------------------------------
    def _create(self, group: str, version: str, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        rt = self.registry.lookup(group, version, plural)
        assert rt is not None, (group, version, plural)
        return self.api.create(rt, namespace, body, {"fieldManager": "kube-apiserver"})[0]

    def apply_crd(self, crd: dict[str, Any]) -> dict[str, Any]:
        """Create the CRD, or update it when it exists (like ``kubectl apply``)."""
        rt = self.registry.lookup(CRD_GROUP, CRD_VERSION, CRD_PLURAL)
        assert rt is not None
        body = copy.deepcopy(crd)
        body.get("metadata", {}).pop("resourceVersion", None)
        try:
            return self.api.create(rt, "", body, {"fieldManager": "kube-api-emulator"})[0]
        except ApiError as exc:
            if exc.reason != "AlreadyExists":
                raise
        with self.store.lock:
            current = self.api.get(rt, "", body["metadata"]["name"])
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self.api.update(rt, "", body["metadata"]["name"], body, {"fieldManager": "kube-api-emulator"})[0]

    def apply_crd_files(self, paths: Iterable[str | Path]) -> list[dict[str, Any]]:
        return [self.apply_crd(doc) for doc in load_crd_files(paths)]

    def apply_gateway_api_crds(self, shared_dir: str | Path | None = None) -> list[dict[str, Any]]:
        """Serve the Gateway API (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant) from its
        own standard-channel CRDs in ``shared/schemas/gateway-api``, CEL rules and defaults included.
        ``shared_dir`` defaults to ``$SHARED_DIR``, else ``../shared`` beside the repository;
        FileNotFoundError when the files are not there (a plain clone)."""
        paths = gateway_api_crd_paths(shared_dir)
        if not paths:
            raise FileNotFoundError(
                "the Gateway API CRDs (shared/schemas/gateway-api/*.yaml) are not beside the checkout"
            )
        return self.apply_crd_files(paths)

    def objects(self, resource_plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Deep copies of the stored objects of a kind (``deployments`` or ``deployments.apps``)."""
        keys = self.registry.storage_keys_for(resource_plural) or [resource_plural]
        if len(keys) > 1:
            raise ValueError(f"{resource_plural!r} is ambiguous: {keys}")
        types = self.registry.by_storage_key(keys[0])
        found = self.store.list(keys[0], namespace)
        if not types:
            return copy.deepcopy(found)
        preferred = sorted(types, key=lambda t: not t.storage_version)[0]
        return [self.api.out(preferred, o) for o in found]

    def compact(self) -> None:
        """Forget the watch history: resuming from any earlier resourceVersion now gets 410 Gone."""
        self.store.compact()

    @property
    def resource_version(self) -> int:
        return self.store.resource_version
