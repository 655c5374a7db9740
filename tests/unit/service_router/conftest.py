"""Reconcile-level fixtures: the router's reconciler against the Kubernetes API emulator.

The reconciler talks to a real ``KubeClient`` over HTTP, so resourceVersions, 409s and
finalizers behave as the server makes them; its caches are snapshots the test refreshes, so a
test decides when the cache lags behind the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller_common import contract, objects
from controller_common.kube import SERVICES, KubeClient, Resource
from controller_common.metrics import Metrics
from emulators.kube_api import BUNDLED_VIRTUAL_SERVICE_CRD, KubeApiServer
from service_router.indexes import INDEXES
from service_router.istio import virtual_service_resource
from service_router.metrics import RouterMetrics
from service_router.reconcile import RouteReconciler
from service_router.reverts import RevertTracker

NS = "default"
ORIGIN = "echo"
VS_V1 = virtual_service_resource("v1")


class SnapshotCache:
    """An informer stand-in: what the server held at the last :meth:`refresh` (or always, if live)."""

    def __init__(self, client: KubeClient, resource: Resource, *, live: bool = True) -> None:
        self.client, self.resource, self.live = client, resource, live
        self._items: list[dict[str, Any]] = []
        self.refresh()

    def refresh(self) -> None:
        self._items = self.client.list(self.resource)[0]

    def _current(self) -> list[dict[str, Any]]:
        if self.live:
            self.refresh()
        return objects.deep_copy(self._items)

    def get(self, key: str) -> dict[str, Any] | None:
        return next((o for o in self._current() if objects.object_key(o) == key), None)

    def list_namespace(self, namespace: str) -> list[dict[str, Any]]:
        return [o for o in self._current() if objects.namespace(o) == namespace]

    def by_index(self, name: str, value: str) -> list[dict[str, Any]]:
        """As the informer's index, computed by the very function ``__main__`` registers."""
        index = INDEXES[name]
        return [o for o in self._current() if value in index(o)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    server: KubeApiServer
    client: KubeClient
    resource: Resource
    services: SnapshotCache
    virtual_services: SnapshotCache
    metrics: RouterMetrics
    clock: FakeClock
    kubeconfig: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    reconciler: RouteReconciler = field(init=False)

    def __post_init__(self) -> None:
        self.reconciler = RouteReconciler(
            client=self.client,
            services=self.services,
            virtual_services=self.virtual_services,
            virtual_service_resource=self.resource,
            record_event=self.record,
            metrics=self.metrics,
            reverts=RevertTracker(threshold=3, window=600, backoff=300, clock=self.clock),
        )

    def record(self, involved: dict[str, Any], *, reason: str, message: str, event_type: str = "Normal") -> None:
        self.events.append({"object": objects.name(involved), "reason": reason, "message": message, "type": event_type})

    def reasons(self, service: str) -> list[str]:
        return [e["reason"] for e in self.events if e["object"] == service]

    def reconcile(self, origin: str = ORIGIN) -> None:
        self.reconciler(f"{NS}/{origin}")

    def refresh(self) -> None:
        self.services.refresh()
        self.virtual_services.refresh()

    # --- the world ------------------------------------------------------------------------------

    def origin(self, name: str = ORIGIN, *, ports: tuple[int, ...] = (80,), virtual_service: bool = True) -> None:
        self.client.create(
            SERVICES,
            {
                "metadata": {"name": name, "namespace": NS},
                "spec": {"selector": {"app": name}, "ports": [{"name": f"p{p}", "port": p} for p in ports]},
            },
        )
        if virtual_service:
            host = contract.service_host(name, NS)
            self.client.create(
                self.resource,
                {
                    "metadata": {"name": name, "namespace": NS},
                    "spec": {
                        "hosts": [host],
                        "http": [{"name": "default", "timeout": "5s", "route": [{"destination": {"host": host}}]}],
                    },
                },
            )

    def clone(self, name: str, origin: str = ORIGIN) -> None:
        self.client.create(
            SERVICES,
            {
                "metadata": {
                    "name": name,
                    "namespace": NS,
                    "annotations": {contract.ORIGIN_SERVICE_ANNOTATION: origin},
                },
                "spec": {"selector": {"clone": name}, "ports": [{"name": "http", "port": 80}]},
            },
        )

    def vs(self, name: str = ORIGIN) -> dict[str, Any]:
        return self.client.get(self.resource, NS, name)

    def route_names(self, name: str = ORIGIN) -> list[str]:
        return [str(r.get("name")) for r in self.vs(name)["spec"].get("http") or []]

    def vs_writes(self) -> list[Any]:
        return [r for r in self.server.request_log if r.resource == "virtualservices" and r.is_write]

    def counter(self, name: str, **labels: str) -> float:
        value = self.metrics.library.registry.get_sample_value(name, labels)
        return float(value or 0.0)


def make_rig(server: KubeApiServer, tmp_path: Path, resource: Resource = VS_V1, *, live: bool = True) -> Iterator[Rig]:
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig", token="service-router")
    client = KubeClient.from_environment(str(kubeconfig))
    try:
        yield Rig(
            server=server,
            client=client,
            resource=resource,
            services=SnapshotCache(client, SERVICES, live=live),
            virtual_services=SnapshotCache(client, resource, live=live),
            metrics=RouterMetrics.create(Metrics("service_router")),
            clock=FakeClock(),
            kubeconfig=kubeconfig,
        )
    finally:
        client.close()


@pytest.fixture
def server() -> Iterator[KubeApiServer]:
    with KubeApiServer(deployment_delay_seconds=0.01) as srv:
        srv.apply_crd_files([BUNDLED_VIRTUAL_SERVICE_CRD])
        yield srv


@pytest.fixture
def rig(server: KubeApiServer, tmp_path: Path) -> Iterator[Rig]:
    """Caches that follow the server at every read (no lag)."""
    yield from make_rig(server, tmp_path)


@pytest.fixture
def lagging_rig(server: KubeApiServer, tmp_path: Path) -> Iterator[Rig]:
    """Caches that change only on ``rig.refresh()``: the test decides when they catch up."""
    yield from make_rig(server, tmp_path, live=False)
