"""Converge one origin Service's VirtualService on the clone Services that name it.

The key is ``<namespace>/<origin service>``. Inputs come from the informer caches (clone Services
carrying the origin annotation, the namespace's VirtualServices); the pure planner in
:mod:`service_router.routes` decides the desired VirtualService; this module writes only the
difference, with the observed ``resourceVersion`` so a concurrent writer makes us re-read rather
than overwrite. A clone Service gets the router's finalizer before it is routed and loses it only
after its route is gone, so traffic never points at a Service that no longer exists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from controller_common import contract, errors, objects
from controller_common.kube import SERVICES, KubeClient, Resource
from service_router.metrics import RouterMetrics
from service_router.routes import Clone, VirtualServicePlan, plan_virtual_services

log = structlog.get_logger(__name__)


class Cache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def list_namespace(self, namespace: str) -> list[dict[str, Any]]: ...


EventRecorder = Callable[..., None]
"""``record(involved, reason=..., message=..., event_type=...)``: never raises."""


def clone_of(service: dict[str, Any]) -> str | None:
    """The origin Service a clone Service stands in for, or None for any other Service."""
    return objects.annotations(service).get(contract.ORIGIN_SERVICE_ANNOTATION) or None


def keys_for_service(service: dict[str, Any]) -> list[str]:
    """A clone Service affects its origin's routes; an origin Service affects its own (ports)."""
    namespace = objects.namespace(service) or "default"
    origin = clone_of(service)
    return [f"{namespace}/{origin}"] if origin else [f"{namespace}/{objects.name(service)}"]


def keys_for_virtual_service(virtual_service: dict[str, Any]) -> list[str]:
    """Every Service in the VirtualService's namespace that one of its hosts may name."""
    namespace = objects.namespace(virtual_service) or "default"
    keys = []
    for host in (virtual_service.get("spec") or {}).get("hosts") or []:
        parts = str(host).split(".")
        if len(parts) == 1 or (len(parts) >= 2 and parts[1] == namespace):
            keys.append(f"{namespace}/{parts[0]}")
        elif len(parts) >= 2:
            keys.append(f"{parts[1]}/{parts[0]}")
    return sorted(set(keys))


@dataclass
class RouteReconciler:
    client: KubeClient
    services: Cache
    virtual_services: Cache
    virtual_service_resource: Resource
    record_event: EventRecorder
    metrics: RouterMetrics
    dry_run: bool = False

    def __call__(self, key: str) -> None:
        namespace, origin = key.split("/", 1)
        services = self.services.list_namespace(namespace)
        clones = [s for s in services if clone_of(s) == origin]
        live = [s for s in clones if not objects.is_being_deleted(s)]
        leaving = [
            s for s in clones if objects.is_being_deleted(s) and objects.has_finalizer(s, contract.ROUTER_FINALIZER)
        ]
        for service in live:
            if not objects.has_finalizer(service, contract.ROUTER_FINALIZER):
                self._add_finalizer(service)

        origin_service = self.services.get(key)
        plans = plan_virtual_services(
            origin_service=origin,
            namespace=namespace,
            origin_ports=_ports(origin_service) if origin_service else (),
            clones=[
                Clone(service=objects.name(s), namespace=namespace, origin_service=origin, ports=_ports(s))
                for s in live
            ],
            virtual_services=self.virtual_services.list_namespace(namespace),
            api_version=self.virtual_service_resource.api_version,
        )
        for plan in plans:
            self._apply(plan, key)
        mesh = plans[0]
        self._report(origin, namespace, live, plans)
        self.metrics.managed_routes.labels(namespace=namespace, origin=origin).set(len(mesh.managed_routes))
        # Only once the route is gone may the Service go: release our finalizer last.
        for service in leaving:
            self._remove_finalizer(service)
            self.record_event(service, reason="Unrouted", message=f"route to {objects.name(service)} removed")
        log.info("reconciled", origin=key, action=plan.action, clones=len(live), leaving=len(leaving))

    def _report(
        self, origin: str, namespace: str, live: list[dict[str, Any]], plans: Sequence[VirtualServicePlan]
    ) -> None:
        """Events on the clone Services: what a person running ``kubectl describe svc`` should see."""
        header = contract.routing_header(origin, namespace)
        for plan in plans:
            for warning in plan.warnings:
                log.warning("virtual service warning", origin=f"{namespace}/{origin}", warning=warning)
                for service in live:
                    self.record_event(service, reason="RoutingWarning", message=warning, event_type="Warning")
            if plan.action == "none":
                continue
            for service in live:
                if objects.name(service) in plan.routed_clones:
                    value = contract.routing_value(objects.name(service), namespace)
                    self.record_event(service, reason="Routed", message=f"requests with {header}: {value} reach it")
        if not any(plan.routed_clones for plan in plans):
            for service in live:
                self.record_event(
                    service,
                    reason="NotRouted",
                    message="no VirtualService route reaches this clone",
                    event_type="Warning",
                )

    def _apply(self, plan: VirtualServicePlan, key: str) -> None:
        if plan.action == "none" or plan.virtual_service is None:
            return
        resource = self.virtual_service_resource
        target = plan.virtual_service
        if self.dry_run:
            log.info("dry run: would write virtual service", action=plan.action, name=objects.name(target))
            return
        if plan.action == "create":
            self.client.create(resource, target)
        elif plan.action == "update":
            self.client.replace(resource, target)
        elif plan.action == "delete":
            with contextlib.suppress(errors.NotFound):
                self.client.delete(
                    resource,
                    objects.namespace(target),
                    objects.name(target),
                    preconditions={"resourceVersion": objects.resource_version(target)},
                )
        self.metrics.virtual_service_writes.labels(action=plan.action).inc()
        log.info("virtual service written", origin=key, action=plan.action, name=objects.name(target))

    def _add_finalizer(self, service: dict[str, Any]) -> None:
        finalizers = [*(service["metadata"].get("finalizers") or []), contract.ROUTER_FINALIZER]
        self._write_finalizers(service, finalizers)

    def _remove_finalizer(self, service: dict[str, Any]) -> None:
        finalizers = [f for f in service["metadata"].get("finalizers") or [] if f != contract.ROUTER_FINALIZER]
        self._write_finalizers(service, finalizers)

    def _write_finalizers(self, service: dict[str, Any], finalizers: Sequence[str]) -> None:
        if self.dry_run:
            log.info("dry run: would set finalizers", service=objects.name(service), finalizers=finalizers)
            return
        # The resourceVersion makes this a compare-and-swap: a list that changed under us is a 409,
        # and the queue retries with a fresh read, so another writer's finalizer is never dropped.
        patch = {"metadata": {"finalizers": list(finalizers), "resourceVersion": objects.resource_version(service)}}
        with contextlib.suppress(errors.NotFound):
            self.client.patch(SERVICES, objects.namespace(service), objects.name(service), patch)


def _ports(service: dict[str, Any] | None) -> tuple[int, ...]:
    ports = ((service or {}).get("spec") or {}).get("ports") or []
    return tuple(int(p["port"]) for p in ports if isinstance(p, dict) and "port" in p)
