"""Converge one origin Service's Gateway API routes (derived per clone, baseline) on its clones.

The Gateway API counterpart of :mod:`service_router.reconcile`, with the same key
(``<namespace>/<origin>``), the same finalizer and the same Events; :class:`RoutingDispatch`
sends each key to one of the two (``--routing-api``, :func:`service_router.gateway_api.uses_gateway_api`).

Guarantees:
- only routes of ours (:func:`service_router.gateway_routes.is_ours_for`) are written; the
  origin's routes never are;
- every update carries the observed ``resourceVersion`` and every delete it as a precondition; a
  409 (or a create finding the name taken) re-lists the routes from the server and plans again, at
  most ``max_write_attempts`` times, then hands the key back to the queue as a transient error;
- a clone Service gets the finalizer before its first derived route and loses it only once no
  derived route of ours (nor a VirtualService route of ours) sends to it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from controller_common import contract, errors, objects
from controller_common.kube import SERVICES, KubeClient, Resource
from service_router.finalizers import releasable, routed_services
from service_router.gateway_api import RoutingApi, RoutingApis, uses_gateway_api
from service_router.gateway_routes import (
    CLONE_LABEL,
    ORIGIN_LABEL,
    GatewayPlan,
    RouteWrite,
    after_route_writes,
    derived_clone,
    gateway_routed,
    is_ours,
    plan_gateway_routes,
    service_ports,
)
from service_router.indexes import CLONE_OF_INDEX, GATEWAY_ROUTE_INDEX, VIRTUAL_SERVICE_INDEX, read
from service_router.metrics import RouterMetrics
from service_router.reconcile import Cache, EventRecorder
from service_router.reporting import Reporter
from service_router.routes import Clone

log = structlog.get_logger(__name__)

MAX_WRITE_ATTEMPTS = 3


def keys_for_gateway_route(route: dict[str, Any]) -> list[str]:
    """The Services a route is attached to (a foreign route changed: its origin's derived routes
    follow), and for a route of ours the origin it serves."""
    namespace = objects.namespace(route) or "default"
    keys = set()
    for ref in (route.get("spec") or {}).get("parentRefs") or []:
        if isinstance(ref, dict) and ref.get("group") == "" and ref.get("kind") == "Service" and ref.get("name"):
            keys.add(f"{ref.get('namespace') or namespace}/{ref['name']}")
    if is_ours(route) and objects.labels(route).get(ORIGIN_LABEL):
        keys.add(f"{namespace}/{objects.labels(route)[ORIGIN_LABEL]}")
    return sorted(keys)


def keys_for_gateway_route_change(old: dict[str, Any], new: dict[str, Any] | None) -> list[str]:
    """Both versions' keys, and the own key of a clone a derived route of ours no longer reaches
    (a Service whose origin annotation is gone is released only by its own key)."""
    keys = set(keys_for_gateway_route(old)) | set(keys_for_gateway_route(new) if new is not None else ())
    gone = derived_clone(old)
    if gone and (new is None or derived_clone(new) != gone):
        keys.add(f"{objects.namespace(old) or 'default'}/{gone}")
    return sorted(keys)


@dataclass
class GatewayRouteReconciler:
    client: KubeClient
    services: Cache
    routes: dict[str, tuple[Resource, Cache]]
    """Route kind (HTTPRoute, GRPCRoute) -> its resource and informer cache."""
    record_event: EventRecorder
    metrics: RouterMetrics
    virtual_services: Cache | None = None
    """Where VirtualService routes of ours may still stand (a clone keeps its finalizer for them)."""
    dry_run: bool = False
    max_write_attempts: int = MAX_WRITE_ATTEMPTS
    reporter: Reporter = field(init=False)

    def __post_init__(self) -> None:
        self.reporter = Reporter(self.record_event)

    def observed(self, namespace: str, keys: Iterable[str]) -> list[dict[str, Any]]:
        """The routes of ``namespace`` a reconcile of ``keys`` depends on (:mod:`service_router.indexes`)."""
        keys = list(keys)
        return [
            {**r, "kind": r.get("kind") or kind}
            for kind, (_, cache) in self.routes.items()
            for r in read(cache, GATEWAY_ROUTE_INDEX, keys, namespace=namespace)
        ]

    def _fresh(self, namespace: str) -> list[dict[str, Any]]:
        return [
            {**r, "kind": r.get("kind") or kind}
            for kind, (resource, _) in self.routes.items()
            for r in self.client.list(resource, namespace)[0]
        ]

    def __call__(self, key: str) -> None:
        namespace, origin = key.split("/", 1)
        origin_service = self.services.get(key)
        clones = self.services.by_index(CLONE_OF_INDEX, key)
        live = [s for s in clones if not objects.is_being_deleted(s)]
        # The origin's routes, those attached to it, and those named like routes its clones may want.
        routes = self.observed(namespace, [key, *(objects.object_key(s) for s in live)])
        whole_namespace = False
        standing = gateway_routed(routes, origin_service=origin)
        routable = live if origin_service is not None else [s for s in live if objects.name(s) in standing]
        for service in routable:
            if not objects.has_finalizer(service, contract.ROUTER_FINALIZER):
                self._write_finalizers(
                    service, [*(service["metadata"].get("finalizers") or []), contract.ROUTER_FINALIZER]
                )
        inputs = [
            Clone(service=objects.name(s), namespace=namespace, origin_service=origin, ports=_ports(s))
            for s in routable
        ]
        for attempt in range(1, self.max_write_attempts + 1):
            plan = plan_gateway_routes(
                origin_service=origin,
                namespace=namespace,
                origin_ports=service_ports(origin_service),
                clones=inputs,
                routes=routes,
                origin_exists=origin_service is not None,
            )
            try:
                self._apply(key, plan)
                break
            except (errors.Conflict, errors.AlreadyExists) as exc:
                self.metrics.conflicts_retried.inc()
                log.info("gateway route write conflict; re-reading", origin=key, attempt=attempt, error=str(exc))
                if attempt == self.max_write_attempts:
                    raise errors.TransientError(f"{key}: Gateway API route write conflicted {attempt} times") from exc
            routes = self._fresh(namespace)
            whole_namespace = True
        if origin_service is not None:
            self._report(origin, namespace, live, plan)
        releasable = self.releasable(
            namespace=namespace,
            origin_service=origin,
            known=[*clones, *([origin_service] if origin_service is not None else [])],
            standing=standing,
            routes=routes,
            writes=() if self.dry_run else plan.writes,
            whole_namespace=whole_namespace,
        )
        for service in releasable:
            name = objects.name(service)
            self._write_finalizers(
                service, [f for f in service["metadata"].get("finalizers") or [] if f != contract.ROUTER_FINALIZER]
            )
            self.reporter.once(service, "Unrouted", f"route to {name} removed", warning=False)
            self.reporter.forget(service)
        log.info(
            "reconciled",
            origin=key,
            routing_api="gateway-api",
            writes=[f"{w.action} {w.kind} {objects.name(w.route)}" for w in plan.writes],
            clones=len(live),
            released=len(releasable),
        )

    def releasable(
        self,
        *,
        namespace: str,
        origin_service: str,
        known: Sequence[dict[str, Any]],
        standing: frozenset[str],
        routes: Sequence[dict[str, Any]],
        writes: Iterable[RouteWrite],
        whole_namespace: bool = False,
    ) -> list[dict[str, Any]]:
        """The Services whose finalizer this origin's reconcile removes once ``writes`` stand.

        Those no longer live clones it is answerable for (clones of it, the Service named like it,
        those its derived routes sent to: ``standing``) that no route of ours of any origin, derived
        or in a VirtualService, still sends to. ``known`` holds its clones and the Service named like
        it; the routes to the others are read by index unless ``routes`` is the whole namespace.
        """
        found = {objects.object_key(s): s for s in known}
        for name in sorted(standing):
            key = f"{namespace}/{name}"
            service = found.get(key) or self.services.get(key)
            if service is not None:
                found[key] = service
        if not whole_namespace:
            seen = {(str(r.get("kind")), objects.object_key(r)) for r in routes}
            more = self.observed(namespace, found)
            routes = [*routes, *(r for r in more if (str(r.get("kind")), objects.object_key(r)) not in seen)]
        after = after_route_writes(routes, writes)
        still = gateway_routed(after)
        if self.virtual_services is not None:
            still |= routed_services(
                read(self.virtual_services, VIRTUAL_SERVICE_INDEX, found, namespace=namespace), namespace=namespace
            )
        return [
            found[key]
            for key in sorted(found)
            if releasable(found[key], origin_service, routed_here=standing, still_routed=still)
        ]

    def _apply(self, key: str, plan: GatewayPlan) -> None:
        for write in plan.writes:
            resource = self.routes[write.kind][0]
            name = objects.name(write.route)
            if self.dry_run:
                log.info("dry run: would write gateway route", action=write.action, kind=write.kind, name=name)
                continue
            if write.action == "create":
                self.client.create(resource, write.route)
            elif write.action == "update":
                self.client.replace(resource, write.route)
            else:
                with contextlib.suppress(errors.NotFound):
                    self.client.delete(
                        resource,
                        objects.namespace(write.route),
                        name,
                        preconditions={"resourceVersion": objects.resource_version(write.route)},
                    )
            self.metrics.gateway_route_writes.labels(kind=write.kind, action=write.action).inc()
            log.info("gateway route written", origin=key, action=write.action, kind=write.kind, name=name)

    def _report(self, origin: str, namespace: str, live: list[dict[str, Any]], plan: GatewayPlan) -> None:
        header = contract.routing_header(origin, namespace)
        for warning in plan.warnings:
            log.info("gateway route warning", origin=f"{namespace}/{origin}", warning=warning)
        for service in live:
            self.reporter.warnings(service, "RoutingWarning", plan.warnings)
            name = objects.name(service)
            if name in plan.routed_clones:
                routes = sorted(
                    f"{r['kind']} {objects.name(r)}" for r in plan.desired if objects.labels(r).get(CLONE_LABEL) == name
                )
                message = (
                    f"requests with {header}: {contract.routing_value(name, namespace)} reach it ({', '.join(routes)})"
                )
                self.reporter.state(service, "Routed", message)
            else:
                self.reporter.state(service, "NotRouted", "no Gateway API route reaches this clone", warning=True)

    def _write_finalizers(self, service: dict[str, Any], finalizers: Sequence[str]) -> None:
        if self.dry_run:
            log.info("dry run: would set finalizers", service=objects.name(service), finalizers=list(finalizers))
            return
        # Compare-and-swap on the resourceVersion: another writer's finalizer is never dropped.
        patch = {"metadata": {"finalizers": list(finalizers), "resourceVersion": objects.resource_version(service)}}
        try:
            self.client.patch(SERVICES, objects.namespace(service), objects.name(service), patch)
        except errors.NotFound:
            pass
        except errors.Conflict:
            self.metrics.conflicts_retried.inc()
            raise


@dataclass
class RoutingDispatch:
    """Send each origin key to the backend that routes it (``--routing-api``)."""

    mode: RoutingApi
    apis: RoutingApis
    virtual_service: Callable[[str], None] | None
    gateway: GatewayRouteReconciler | None

    def backend(self, key: str) -> str:
        namespace, origin = key.split("/", 1)
        routes = self.gateway.observed(namespace, [key]) if self.gateway is not None else []
        gateway = uses_gateway_api(self.mode, self.apis, routes, origin_service=origin, namespace=namespace)
        return "gateway-api" if gateway else "virtualservice"

    def __call__(self, key: str) -> None:
        if self.backend(key) == "gateway-api" and self.gateway is not None:
            self.gateway(key)
        elif self.virtual_service is not None:
            self.virtual_service(key)


def _ports(service: dict[str, Any]) -> tuple[int, ...]:
    return tuple(p.port for p in service_ports(service))
