"""Converge one origin Service's VirtualServices on the clone Services that name it.

The key is ``<namespace>/<origin service>``. Inputs come from the informer caches (clone Services
carrying the origin annotation, the namespace's VirtualServices); the pure planner in
:mod:`service_router.routes` decides the desired VirtualServices; this module writes only the
difference.

Guarantees:
- every write carries the observed ``resourceVersion``; a 409 (or a create that finds the name
  taken) re-reads the VirtualServices *from the server* — the cache may be the stale copy that
  caused it — and plans again, at most ``max_write_attempts`` times per reconcile, then hands the
  key back to the queue as a transient error (client-go's ``RetryOnConflict``: no sleep here,
  the queue's backoff is the only wait). Nothing is written when the desired routes stand.
- a clone Service gets the router's finalizer before it is routed and loses it only after no
  route of ours to it is left, so traffic never points at a Service that no longer exists, even
  if the router was down while the Service was deleted; a Service whose origin annotation was
  removed or changed loses its route in the old origin's VirtualServices and then the finalizer
  (:mod:`service_router.finalizers`);
- an origin that is not an existing Service gets nothing written for its clones: a Warning
  Event (``OriginNotFound``) and a count of ``service_router_skipped_total`` instead. A name no
  Service can bear (``Echo``, ``frontend.shop``) is not even planned: routing headers are lower
  case, so ``Echo``'s is echo's, and planning it would remove echo's routes.
- planning runs behind one boundary per origin: whatever its VirtualServices hold, an exception
  while reading them or planning is that origin's Warning Event (``RoutingFailed``, on its clone
  Services) and a count of ``service_router_skipped_total{reason="plan_error"}``, nothing more
  is written, and the key is not retried hot (a change to its objects or the resync brings it back);
  every other origin reconciles as before.
- a write that repeats our last one (someone undid it) is confirmed against the server, counted,
  and refused for a while once it keeps happening (:mod:`service_router.reverts`): the router
  never fights another writer in a hot loop. A Warning Event says so on the clone Services.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import structlog

from controller_common import contract, errors, objects
from controller_common.kube import SERVICES, KubeClient, Resource
from service_router.cloning import route_owner, routed_clones
from service_router.finalizers import after_writes, clone_of, to_release
from service_router.hosts import canonical_host
from service_router.indexes import CLONE_OF_INDEX, VIRTUAL_SERVICE_INDEX, read
from service_router.metrics import RouterMetrics
from service_router.reporting import Reporter
from service_router.reverts import RevertTracker
from service_router.routes import Clone, VirtualServicePlan, plan_virtual_services, routed_by

log = structlog.get_logger(__name__)

MAX_WRITE_ATTEMPTS = 3
_T = TypeVar("_T")
SERVICE_SUFFIX = ".svc.cluster.local"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Cache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def list_namespace(self, namespace: str) -> list[dict[str, Any]]: ...

    def by_index(self, name: str, value: str) -> list[dict[str, Any]]: ...


EventRecorder = Callable[..., None]
"""``record(involved, reason=..., message=..., event_type=...)``: never raises."""


class _StaleRead(Exception):
    """The cache lagged behind the server: plan again from a fresh read (not a conflict)."""


def keys_for_service(service: dict[str, Any]) -> list[str]:
    """A clone Service affects its origin's routes; any other Service its own key.

    Its own key covers an origin (its ports, its appearing: an origin created after its clones
    gets them routed at once) and a Service whose origin annotation was removed (its finalizer).
    """
    namespace = objects.namespace(service) or "default"
    origin = clone_of(service)
    return [f"{namespace}/{origin}"] if origin else [f"{namespace}/{objects.name(service)}"]


def keys_for_update(keys: Callable[[dict[str, Any]], list[str]], old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The keys of both versions: an annotation removed or retargeted, or a route taken out,
    must reach the origin (or Service) the *old* object named, not only the new one's."""
    return sorted({*keys(old), *keys(new)})


def keys_for_virtual_service(virtual_service: dict[str, Any]) -> list[str]:
    """Every Service the VirtualService's hosts or foreign route destinations name, and the
    origin of each of our routes.

    Destinations matter for gateway VirtualServices, whose hosts are external names
    (``echo.example.com``) while their routes send to the origin Service. Our own routes name
    their origin in their header (``service-router-<origin>-<namespace>``): that origin is the key,
    not the clone they send to, whose key would be a reconcile with nothing to do (at 1,000 clones
    those were most of the router's reconciles after a restart).
    """
    namespace = objects.namespace(virtual_service) or "default"
    spec = virtual_service.get("spec") or {}
    hosts = [str(h) for h in spec.get("hosts") or []]
    keys = set()
    for route in spec.get("http") or []:
        if not isinstance(route, dict):
            continue
        owner = route_owner(route, vs_namespace=namespace)
        if owner is not None:
            origin = owner.header.removeprefix(contract.HEADER_PREFIX).removesuffix(f"-{owner.namespace}")
            keys.add(f"{owner.namespace}/{origin}")
            continue
        for item in route.get("route") or []:
            host = (item.get("destination") or {}).get("host") if isinstance(item, dict) else None
            if host:
                hosts.append(str(host))
    for host in hosts:
        fqdn = canonical_host(host, context_namespace=namespace)
        if fqdn.endswith(SERVICE_SUFFIX):
            parts = fqdn[: -len(SERVICE_SUFFIX)].split(".")
            if len(parts) == 2 and all(_DNS_LABEL.match(p) for p in parts):
                keys.add(f"{parts[1]}/{parts[0]}")
    return sorted(keys)


def keys_for_virtual_service_change(old: dict[str, Any], new: dict[str, Any] | None) -> list[str]:
    """The keys of a VirtualService update (``new``) or deletion (``None``).

    Both versions' keys, and the own key of every clone one of our routes sent to in ``old`` but no
    longer does: a Service whose origin annotation is gone keeps our finalizer until no route of
    ours reaches it, and when another writer took that route out only its own key releases it.
    """
    keys = set(keys_for_virtual_service(old)) | set(keys_for_virtual_service(new) if new is not None else ())
    keys.update(f"{namespace}/{clone}" for namespace, clone in _our_routes(old) - _our_routes(new))
    return sorted(keys)


def _our_routes(virtual_service: dict[str, Any] | None) -> set[tuple[str, str]]:
    """(namespace, clone) of each route of ours in ``virtual_service``."""
    if virtual_service is None:
        return set()
    namespace = objects.namespace(virtual_service) or "default"
    routes = [r for r in (virtual_service.get("spec") or {}).get("http") or [] if isinstance(r, dict)]
    owners = (route_owner(route, vs_namespace=namespace) for route in routes)
    return {(owner.namespace, owner.clone) for owner in owners if owner is not None}


@dataclass
class _Outcome:
    held_seconds: float = 0.0
    """How long a write we refused (another writer keeps undoing it) stays refused; 0: none."""
    routed: set[str] = field(default_factory=set)
    """Clone Services a route reaches after this reconcile (desired, or observed where held)."""
    written: list[VirtualServicePlan] = field(default_factory=list)
    """The plans executed (in a dry run: those that would have been)."""


@dataclass
class RouteReconciler:
    client: KubeClient
    services: Cache
    virtual_services: Cache
    virtual_service_resource: Resource
    record_event: EventRecorder
    metrics: RouterMetrics
    dry_run: bool = False
    max_write_attempts: int = MAX_WRITE_ATTEMPTS
    reverts: RevertTracker = field(default_factory=RevertTracker)
    reporter: Reporter = field(init=False)

    def __post_init__(self) -> None:
        self.reporter = Reporter(self.record_event)

    def __call__(self, key: str) -> None:
        namespace, origin = key.split("/", 1)
        origin_service = self.services.get(key)
        # Read by index, not by namespace: what this origin's planning looks at, whatever else the
        # namespace holds (service_router.indexes says why that is all of it).
        virtual_services = self.virtual_services_of(key)
        whole_namespace = False
        clones = self.services.by_index(CLONE_OF_INDEX, key)
        live = [s for s in clones if not objects.is_being_deleted(s)]
        if origin_service is None and live:
            self._origin_not_found(origin, namespace, live)
        # A missing origin gets nothing new: only clones already routed stay so (and keep the finalizer).
        standing = self._planned(key, live, routed_by, virtual_services, origin_service=origin, namespace=namespace)
        routable = live if origin_service is not None else [s for s in live if objects.name(s) in standing]
        for service in routable:
            if not objects.has_finalizer(service, contract.ROUTER_FINALIZER):
                self._add_finalizer(service)

        inputs = [
            Clone(service=objects.name(s), namespace=namespace, origin_service=origin, ports=_ports(s))
            for s in routable
        ]
        plans: tuple[VirtualServicePlan, ...] = ()
        outcome = _Outcome()
        if origin_service is None and not _DNS_LABEL.match(origin):
            # No Service can bear this name (upper case, a dot, junk), yet its routing header is lower
            # case like a real origin's ("Echo" spells echo's): planning it would take echo's routes away.
            log.info("origin is no Service name; nothing to plan", origin=key)
        else:
            for attempt in range(1, self.max_write_attempts + 1):
                plans = self._planned(
                    key,
                    live,
                    plan_virtual_services,
                    origin_service=origin,
                    namespace=namespace,
                    origin_ports=_ports(origin_service) if origin_service else (),
                    clones=inputs,
                    virtual_services=virtual_services,
                    api_version=self.virtual_service_resource.api_version,
                    origin_exists=origin_service is not None,
                )
                try:
                    outcome = self._apply_all(key, plans, live, virtual_services)
                    break
                except _StaleRead:
                    log.debug("cache behind the server; planning from a fresh read", origin=key, attempt=attempt)
                except (errors.Conflict, errors.AlreadyExists) as exc:
                    self.metrics.conflicts_retried.inc()
                    log.info("virtual service write conflict; re-reading", origin=key, attempt=attempt, error=str(exc))
                    if attempt == self.max_write_attempts:
                        for service in live:
                            self.reporter.once(
                                service,
                                "WriteConflict",
                                f"VirtualService changed under every one of {attempt} writes; will retry with backoff",
                            )
                        raise errors.TransientError(f"{key}: VirtualService write conflicted {attempt} times") from exc
                # The cache may be the stale copy that made us conflict: read the server itself.
                virtual_services = self.client.list(self.virtual_service_resource, namespace)[0]
                whole_namespace = True
            else:
                raise errors.TransientError(
                    f"{key}: cache still behind the server after {self.max_write_attempts} reads"
                )

        if origin_service is not None:
            self._report(origin, namespace, live, plans, outcome, routed_before=standing)
        self._set_gauges(origin, namespace, plans)
        # Only once no route of ours is left to a Service that is no longer a live clone (deleted,
        # annotation removed or retargeted) may it go: release our finalizer last.
        services, observed = self._planned(
            key,
            live,
            self.release_inputs,
            namespace=namespace,
            origin_service=origin,
            known=[*clones, *([origin_service] if origin_service is not None else [])],
            virtual_services=virtual_services,
            whole_namespace=whole_namespace,
        )
        releasable = self._planned(
            key,
            live,
            to_release,
            services,
            origin_service=origin,
            namespace=namespace,
            observed=observed,
            standing=after_writes(observed, outcome.written),
        )
        for service in releasable:
            self._remove_finalizer(service)
            self.reporter.once(service, "Unrouted", f"route to {objects.name(service)} removed", warning=False)
            self.reporter.forget(service)
        if not clones:
            self.reverts.forget(key)
        log.info(
            "reconciled",
            origin=key,
            actions=[p.action for p in plans],
            clones=len(live),
            released=len(releasable),
            held_seconds=round(outcome.held_seconds, 1),
        )
        if outcome.held_seconds:
            raise errors.RequeueAfter(outcome.held_seconds, "another writer keeps undoing our routes")

    def virtual_services_of(self, key: str) -> list[dict[str, Any]]:
        """The VirtualServices of the key's namespace that name its origin (hosts, destinations,
        routes of ours, a name a new one would take): the ones its plans depend on."""
        namespace, origin = key.split("/", 1)
        # Routing headers are lower case: an origin spelled "Echo" reads (and must see) echo's routes.
        keys = [key, f"{namespace}/{origin.lower()}"]
        return read(self.virtual_services, VIRTUAL_SERVICE_INDEX, keys, namespace=namespace)

    def release_inputs(
        self,
        *,
        namespace: str,
        origin_service: str,
        known: Sequence[dict[str, Any]],
        virtual_services: Sequence[dict[str, Any]],
        whole_namespace: bool = False,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The Services and VirtualServices :func:`to_release` needs for this origin.

        Services: every one it may release, ``known`` (the clones, the Service named like the
        origin) and those the origin's routes in ``virtual_services`` sent to (an annotation
        removed); by ``namespace/name``. VirtualServices: ``virtual_services`` (what was planned
        from) and every one a route of ours to one of those Services stands in, whatever its origin
        — unless ``virtual_services`` already is the whole namespace (read from the server).
        """
        found = {objects.object_key(s): s for s in known}
        for name in sorted(routed_by(virtual_services, origin_service=origin_service, namespace=namespace)):
            key = f"{namespace}/{name}"
            service = found.get(key) or self.services.get(key)
            if service is not None:
                found[key] = service
        services = [found[k] for k in sorted(found)]
        if whole_namespace:
            return services, list(virtual_services)
        more = read(self.virtual_services, VIRTUAL_SERVICE_INDEX, list(found), namespace=namespace)
        return services, _union(virtual_services, more)

    def _planned(self, key: str, live: list[dict[str, Any]], step: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run one pure step of this origin's planning; whatever it raises is this origin's bad input."""
        try:
            return step(*args, **kwargs)
        except Exception as exc:  # a shape no check foresaw: this origin's Warning, never a crash loop
            namespace, origin = key.split("/", 1)
            log.exception("virtual services of origin could not be planned", origin=key, step=step.__name__)
            self.metrics.skipped.labels(namespace=namespace, reason="plan_error").inc()
            message = (
                f"the VirtualServices of {origin}.{namespace} could not be planned ({type(exc).__name__}: "
                f"{str(exc)[:200]}); its routes and finalizers stay as they are until that is fixed: check the "
                "VirtualServices against Istio's schema"
            )
            for service in live:
                self.reporter.state(service, "RoutingFailed", message, warning=True)
            raise errors.PermanentError(f"{key}: {message}") from exc

    def _origin_not_found(self, origin: str, namespace: str, live: list[dict[str, Any]]) -> None:
        """Bad input (a typo, a hand-written annotation, an origin deleted): say so, add no route."""
        self.metrics.skipped.labels(namespace=namespace, reason="origin_not_found").inc()
        log.warning(
            "origin service not found; its clones get no route",
            origin=f"{namespace}/{origin}",
            clones=sorted(objects.name(s) for s in live),
        )
        for service in live:
            self.reporter.state(
                service,
                "OriginNotFound",
                f"{contract.ORIGIN_SERVICE_ANNOTATION} names {origin!r}, which is not a Service in namespace "
                f"{namespace}: no route is added for this clone until it exists",
                warning=True,
            )

    # --- writing --------------------------------------------------------------------------------

    def _apply_all(
        self,
        key: str,
        plans: Sequence[VirtualServicePlan],
        live: list[dict[str, Any]],
        observed: Sequence[dict[str, Any]],
    ) -> _Outcome:
        outcome = _Outcome()
        namespace, origin = key.split("/", 1)
        header = contract.routing_header(origin, namespace)
        for plan in plans:
            target = plan.virtual_service
            if plan.action == "none" or target is None:
                outcome.routed.update(plan.routed_clones)
                continue
            ident = objects.object_key(target)
            routes = (target.get("spec") or {}).get("http") or []
            if plan.action != "delete" and not self.dry_run and self.reverts.is_repeat(key, ident, routes):
                held = self._held_back(key, plan, live)
                if held:
                    outcome.held_seconds = max(outcome.held_seconds, held)
                    standing = next((v for v in observed if objects.object_key(v) == ident), None)
                    if standing is not None:
                        http = (standing.get("spec") or {}).get("http") or []
                        vs_namespace = objects.namespace(standing) or namespace
                        outcome.routed.update(routed_clones(http, header=header, vs_namespace=vs_namespace))
                    continue
            self._write(plan, key)
            outcome.written.append(plan)
            outcome.routed.update(plan.routed_clones)
            if not self.dry_run:
                # After a delete nothing of ours stands there: a later create is new intent, not a revert.
                self.reverts.remember(key, ident, None if plan.action == "delete" else routes)
        return outcome

    def _held_back(self, key: str, plan: VirtualServicePlan, live: list[dict[str, Any]]) -> float:
        """Seconds to hold back a write that repeats our last one; 0 to write it."""
        remaining = self.reverts.backoff_remaining(key)
        if remaining:
            return remaining
        self._confirm_fresh(plan)
        namespace, origin = key.split("/", 1)
        target = objects.object_key(plan.virtual_service or {})
        verdict = self.reverts.revert_seen(key)
        if verdict.new_revert:
            self.metrics.reverts_detected.labels(namespace=namespace, origin=origin).inc()
        if verdict.write:
            log.info("our routes were undone by another writer; restoring", origin=key, virtual_service=target)
            for service in live:
                self.reporter.once(
                    service, "RoutesRestored", f"routes in VirtualService {target} were undone; restored", warning=False
                )
            return 0.0
        if verdict.started_backoff:
            self.metrics.revert_backoffs.labels(namespace=namespace, origin=origin).inc()
            log.warning(
                "another writer keeps undoing our routes; backing off",
                origin=key,
                virtual_service=target,
                backoff_seconds=verdict.backoff_seconds,
            )
            for service in live:
                self.reporter.once(
                    service,
                    "RoutesReverted",
                    f"another writer keeps undoing the routes in VirtualService {target}; not restoring them for "
                    f"{verdict.backoff_seconds:.0f}s (a GitOps tool? let it ignore spec.http of this VirtualService)",
                )
        return verdict.backoff_seconds

    def _confirm_fresh(self, plan: VirtualServicePlan) -> None:
        """Raise ``_StaleRead`` unless the cached VirtualService the plan started from is the server's."""
        target = plan.virtual_service or {}
        try:
            fresh: dict[str, Any] | None = self.client.get(
                self.virtual_service_resource, objects.namespace(target), objects.name(target)
            )
        except errors.NotFound:
            fresh = None
        if plan.action == "create":
            if fresh is not None:
                raise _StaleRead
        elif fresh is None or objects.resource_version(fresh) != objects.resource_version(target):
            raise _StaleRead

    def _write(self, plan: VirtualServicePlan, key: str) -> None:
        resource = self.virtual_service_resource
        target = plan.virtual_service or {}
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

    # --- seeing it ------------------------------------------------------------------------------

    def _report(
        self,
        origin: str,
        namespace: str,
        live: list[dict[str, Any]],
        plans: Sequence[VirtualServicePlan],
        outcome: _Outcome,
        *,
        routed_before: Iterable[str] = (),
    ) -> None:
        """Events on the clone Services: what a person running ``kubectl describe svc`` should see.

        ``routed_before``: clones a route of ours reached before this reconcile wrote anything.
        """
        already = set(routed_before)
        header = contract.routing_header(origin, namespace)
        warnings = [w for plan in plans for w in plan.warnings]
        for warning in warnings:
            log.info("virtual service warning", origin=f"{namespace}/{origin}", warning=warning)
        has_virtual_service = any(plan.virtual_service is not None for plan in plans)
        for service in live:
            self.reporter.warnings(service, "RoutingWarning", warnings)
            name = objects.name(service)
            if name in outcome.routed:
                value = contract.routing_value(name, namespace)
                message = f"requests with {header}: {value} reach it"
                if name in already:
                    self.reporter.assume(service, "Routed", message)
                self.reporter.state(service, "Routed", message)
            elif not has_virtual_service:
                self.reporter.state(
                    service,
                    "NoVirtualService",
                    f"no VirtualService for {origin}.{namespace} to route through, and none may be created",
                    warning=True,
                )
            else:
                self.reporter.state(service, "NotRouted", "no VirtualService route reaches this clone", warning=True)

    def _set_gauges(self, origin: str, namespace: str, plans: Sequence[VirtualServicePlan]) -> None:
        for plan in plans:
            if plan.virtual_service is None:
                continue
            labels = {"namespace": namespace, "virtual_service": objects.name(plan.virtual_service), "origin": origin}
            if plan.action == "delete" or not plan.managed_routes:
                with contextlib.suppress(KeyError):
                    self.metrics.managed_routes.remove(*labels.values())
            else:
                self.metrics.managed_routes.labels(**labels).set(len(plan.managed_routes))

    # --- finalizers -----------------------------------------------------------------------------

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
        try:
            self.client.patch(SERVICES, objects.namespace(service), objects.name(service), patch)
        except errors.NotFound:
            pass
        except errors.Conflict as exc:
            # Expected on every close: the delete (or this Service's other key releasing the same
            # finalizer) changed it after our read. Counted as a conflict, retried quietly.
            self.metrics.conflicts_retried.inc()
            raise errors.TransientError(f"finalizers of {objects.name(service)}: {exc.reason}, re-reading") from exc


def _union(first: Sequence[dict[str, Any]], more: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``first`` and those of ``more`` it does not hold already (by ``namespace/name``)."""
    found = {objects.object_key(o): o for o in first}
    for obj in more:
        found.setdefault(objects.object_key(obj), obj)
    return list(found.values())


def _ports(service: dict[str, Any] | None) -> tuple[int, ...]:
    ports = ((service or {}).get("spec") or {}).get("ports") or []
    return tuple(int(p["port"]) for p in ports if isinstance(p, dict) and "port" in p)
