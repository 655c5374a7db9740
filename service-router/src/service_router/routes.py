"""Which VirtualService the router writes for an origin, and what it writes: pure planning.

The router edits the one VirtualService that already serves the origin host for in-mesh
traffic (Istio does not merge two VirtualServices for one host, IST0109), and creates one only
when none exists; the route list it writes comes from ``cloning.desired_http_routes``.
VirtualServices bound only to gateways are edited only when they opt in, and get plans of
their own (``plan_gateway_virtual_services``).

Guarantees:
- the plan is a function of its inputs only, and planning again on the planned result yields
  ``"none"``: no write in a steady state;
- a VirtualService is deleted only if it carries our managed-by label, never otherwise, and
  one is never created next to an opted-out VirtualService for the same host;
- inputs are never mutated: outputs are deep copies.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from controller_common import objects
from controller_common.contract import (
    GATEWAY_OPT_IN_ANNOTATION,
    MANAGED_BY_LABEL,
    SERVICE_ROUTER_MANAGER,
    VIRTUAL_SERVICE_OPT_OUT_ANNOTATION,
    routing_header,
    service_host,
)
from service_router.cloning import (
    Clone,
    belongs_to,
    desired_http_routes,
    impostors,
    is_managed_route,
    managed_names,
    relevant_clones,
    route_owner,
    routed_clones,
    targets_origin,
)
from service_router.hosts import refers_to

__all__ = [
    "Clone",
    "VirtualServicePlan",
    "belongs_to",
    "desired_http_routes",
    "is_managed_route",
    "plan_gateway_virtual_services",
    "plan_virtual_service",
    "plan_virtual_services",
    "route_owner",
    "routed_by",
    "select_virtual_service",
]

DEFAULT_API_VERSION = "networking.istio.io/v1"
DEFAULT_ROUTE_NAME = "default"
"""Name of the route to the origin in a VirtualService the router creates (not managed: it is
the route the clone routes are copied from)."""
MESH_GATEWAY = "mesh"


@dataclass(frozen=True)
class VirtualServicePlan:
    """What to do to the origin's VirtualService.

    ``virtual_service`` is the full desired object for ``create``/``update`` (for update, a deep
    copy of the observed one with the new ``spec.http``, ``metadata.resourceVersion`` kept), the
    observed object for ``delete``, and the observed object (or ``None``) for ``none``.
    """

    action: Literal["none", "create", "update", "delete"]
    virtual_service: dict[str, Any] | None
    managed_routes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    routed_clones: tuple[str, ...] = ()
    """Names of the clone Services that have at least one managed route in the result."""


# --- small predicates -----------------------------------------------------------------------


def _annotation(obj: dict[str, Any], key: str) -> str:
    return str(objects.annotations(obj).get(key, ""))


def is_opted_out(virtual_service: dict[str, Any]) -> bool:
    return _annotation(virtual_service, VIRTUAL_SERVICE_OPT_OUT_ANNOTATION).lower() == "true"


def is_gateway_opted_in(virtual_service: dict[str, Any]) -> bool:
    return _annotation(virtual_service, GATEWAY_OPT_IN_ANNOTATION).lower() == "true"


def serves_mesh(virtual_service: dict[str, Any]) -> bool:
    """Whether sidecars apply this VirtualService: no ``gateways``, or ``mesh`` among them."""
    gateways = (virtual_service.get("spec") or {}).get("gateways") or []
    return not gateways or MESH_GATEWAY in gateways


def is_owned(virtual_service: dict[str, Any]) -> bool:
    """Whether the router created this VirtualService (and may therefore delete it)."""
    return bool(objects.labels(virtual_service).get(MANAGED_BY_LABEL) == SERVICE_ROUTER_MANAGER)


def serves_host(virtual_service: dict[str, Any], *, service: str, namespace: str) -> bool:
    """Whether one of the VirtualService's hosts names ``service.namespace`` (no wildcards)."""
    vs_namespace = objects.namespace(virtual_service) or namespace
    hosts = (virtual_service.get("spec") or {}).get("hosts") or []
    return any(refers_to(str(h), service=service, namespace=namespace, context_namespace=vs_namespace) for h in hosts)


# --- selection ------------------------------------------------------------------------------


def _age_key(virtual_service: dict[str, Any]) -> tuple[str, str, str]:
    # RFC 3339 timestamps in UTC ("...Z") sort chronologically as strings; a missing one sorts last.
    stamp = str((virtual_service.get("metadata") or {}).get("creationTimestamp") or "\uffff")
    return (stamp, objects.namespace(virtual_service) or "", objects.name(virtual_service))


def routed_by(virtual_services: Sequence[dict[str, Any]], *, origin_service: str, namespace: str) -> frozenset[str]:
    """Clone Services that routes of ours *for this origin* send to, in any of ``virtual_services``."""
    header = routing_header(origin_service, namespace)
    return frozenset(
        clone
        for vs in virtual_services
        for clone in routed_clones(
            (vs.get("spec") or {}).get("http") or [], header=header, vs_namespace=objects.namespace(vs) or namespace
        )
    )


def select_virtual_service(
    virtual_services: Sequence[dict[str, Any]], *, origin_service: str, namespace: str
) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """The one VirtualService that serves the origin host to sidecars, which the router edits.

    Candidates name the origin host (any spelling, short names resolved in their own namespace),
    apply to the mesh (no ``gateways``, or ``mesh`` among them) and are not opted out. Among
    several (Istio would use only one, IST0109) the oldest wins (creationTimestamp, then
    namespace/name) and the others are named in a warning and left alone.

    VirtualServices bound only to gateways never serve sidecars, so they are not candidates:
    opted-in ones get their own plans from ``plan_gateway_virtual_services``; for the others a
    warning says they were skipped.
    """
    warnings: list[str] = []
    candidates: list[dict[str, Any]] = []
    for vs in virtual_services:
        if not serves_host(vs, service=origin_service, namespace=namespace):
            continue
        if is_opted_out(vs):
            warnings.append(f"VirtualService {objects.object_key(vs)} opted out ({VIRTUAL_SERVICE_OPT_OUT_ANNOTATION})")
            continue
        if not serves_mesh(vs):
            if not is_gateway_opted_in(vs):
                warnings.append(
                    f"gateway VirtualService {objects.object_key(vs)} without opt-in "
                    f"({GATEWAY_OPT_IN_ANNOTATION}): ignored"
                )
            continue
        candidates.append(vs)
    if not candidates:
        return None, tuple(warnings)
    candidates.sort(key=_age_key)
    picked, ignored = candidates[0], candidates[1:]
    if ignored:
        warnings.append(
            f"{len(candidates)} VirtualServices serve {origin_service}.{namespace}: "
            f"picked {objects.object_key(picked)}, ignored {', '.join(objects.object_key(vs) for vs in ignored)}"
        )
    return picked, tuple(warnings)


def _blocking_opt_out(
    virtual_services: Sequence[dict[str, Any]], *, origin_service: str, namespace: str
) -> dict[str, Any] | None:
    """An opted-out mesh VirtualService for the origin host: creating another would conflict with it."""
    for vs in virtual_services:
        if is_opted_out(vs) and serves_mesh(vs) and serves_host(vs, service=origin_service, namespace=namespace):
            return vs
    return None


# --- the plan -------------------------------------------------------------------------------


def default_route(*, origin_service: str, namespace: str, origin_ports: Sequence[int]) -> dict[str, Any]:
    """The route to the origin in a VirtualService the router creates (port only if unambiguous)."""
    destination: dict[str, Any] = {"host": service_host(origin_service, namespace)}
    ports = sorted(set(origin_ports))
    if len(ports) == 1:
        destination["port"] = {"number": ports[0]}
    return {"name": DEFAULT_ROUTE_NAME, "route": [{"destination": destination}]}


def _new_name(virtual_services: Sequence[dict[str, Any]], *, origin_service: str, namespace: str) -> str:
    taken = {objects.name(vs) for vs in virtual_services if (objects.namespace(vs) or namespace) == namespace}
    names = [origin_service, f"{origin_service}-{SERVICE_ROUTER_MANAGER}"]
    names += (f"{origin_service}-{SERVICE_ROUTER_MANAGER}-{i}" for i in range(2, len(taken) + 3))
    return next(name for name in names if name not in taken)


def plan_virtual_service(
    *,
    origin_service: str,
    namespace: str,
    origin_ports: Sequence[int],
    clones: Sequence[Clone],
    virtual_services: Sequence[dict[str, Any]],
    api_version: str = DEFAULT_API_VERSION,
    may_create: bool = True,
) -> VirtualServicePlan:
    """Create, update, delete or leave the origin's VirtualService so that it routes ``clones``.

    ``virtual_services`` are the observed ones (at least those of ``namespace``); they are not
    mutated. Without ``may_create`` no VirtualService is created. See the module docstring for
    the guarantees.
    """
    header = routing_header(origin_service, namespace)
    relevant = relevant_clones(clones, origin_service=origin_service, namespace=namespace)
    observed, warnings = select_virtual_service(virtual_services, origin_service=origin_service, namespace=namespace)

    if observed is None:
        if not relevant or not may_create:
            return VirtualServicePlan("none", None, (), warnings)
        blocker = _blocking_opt_out(virtual_services, origin_service=origin_service, namespace=namespace)
        if blocker is not None:
            # Creating a second VirtualService for the host would silently conflict with it.
            return VirtualServicePlan("none", None, (), warnings)
        name = _new_name(virtual_services, origin_service=origin_service, namespace=namespace)
        if name != origin_service:
            warnings = (
                *warnings,
                f"VirtualService {namespace}/{origin_service} exists but does not serve the origin; creating {name}",
            )
        http = desired_http_routes(
            [default_route(origin_service=origin_service, namespace=namespace, origin_ports=origin_ports)],
            origin_service=origin_service,
            namespace=namespace,
            vs_namespace=namespace,
            clones=relevant,
        )
        if not managed_names(http, header=header, vs_namespace=namespace):
            return VirtualServicePlan(
                "none", None, (), (*warnings, f"no clone of {origin_service}.{namespace} serves its port")
            )
        created = {
            "apiVersion": api_version,
            "kind": "VirtualService",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {MANAGED_BY_LABEL: SERVICE_ROUTER_MANAGER},
            },
            "spec": {"hosts": [service_host(origin_service, namespace)], "http": http},
        }
        return VirtualServicePlan(
            "create",
            created,
            managed_names(http, header=header, vs_namespace=namespace),
            warnings,
            routed_clones(http, header=header, vs_namespace=namespace),
        )

    vs_namespace = objects.namespace(observed) or namespace
    current = list((observed.get("spec") or {}).get("http") or [])
    owned = is_owned(observed)
    base = current
    if owned and origin_ports:
        # Our own default route follows the origin's ports: a port pinned after the origin
        # gained a second one would send that port's traffic to the wrong one.
        fresh = default_route(origin_service=origin_service, namespace=namespace, origin_ports=origin_ports)
        base = [fresh if r.get("name") == DEFAULT_ROUTE_NAME else r for r in current]
    http = desired_http_routes(
        base,
        origin_service=origin_service,
        namespace=namespace,
        vs_namespace=vs_namespace,
        clones=relevant,
    )
    warnings = (*warnings, *_impostor_warnings(observed, vs_namespace=vs_namespace))
    managed = managed_names(http, header=header, vs_namespace=vs_namespace)
    if relevant and not managed:
        warnings = (
            *warnings,
            f"VirtualService {objects.object_key(observed)} has no http route to {origin_service}.{namespace} to clone",
        )
    if not relevant and owned:
        if all(r.get("name") == DEFAULT_ROUTE_NAME for r in http):
            return VirtualServicePlan("delete", observed, (), warnings)
        # Someone added routes of their own to our VirtualService: it is theirs too now.
        warnings = (
            *warnings,
            f"VirtualService {objects.object_key(observed)} kept: it has routes the router did not write",
        )
    return _update_or_none(observed, current, http, header=header, vs_namespace=vs_namespace, warnings=warnings)


def _impostor_warnings(observed: dict[str, Any], *, vs_namespace: str) -> tuple[str, ...]:
    names = impostors((observed.get("spec") or {}).get("http") or [], vs_namespace=vs_namespace)
    if not names:
        return ()
    return (
        f"VirtualService {objects.object_key(observed)}: route(s) {', '.join(names)} are named like the router's "
        "but lack its routing header or destination: left alone",
    )


def _update_or_none(
    observed: dict[str, Any],
    current: list[dict[str, Any]],
    http: list[dict[str, Any]],
    *,
    header: str,
    vs_namespace: str,
    warnings: tuple[str, ...],
) -> VirtualServicePlan:
    managed = managed_names(http, header=header, vs_namespace=vs_namespace)
    routed = routed_clones(http, header=header, vs_namespace=vs_namespace)
    if http == current:
        return VirtualServicePlan("none", observed, managed, warnings, routed)
    updated = copy.deepcopy(observed)
    spec = updated.setdefault("spec", {})
    if http:
        spec["http"] = http
    else:
        spec.pop("http", None)
    return VirtualServicePlan("update", updated, managed, warnings, routed)


def plan_gateway_virtual_services(
    *,
    origin_service: str,
    namespace: str,
    clones: Sequence[Clone],
    virtual_services: Sequence[dict[str, Any]],
) -> tuple[VirtualServicePlan, ...]:
    """Plans (``update`` or ``none``) for opted-in VirtualServices bound only to gateways.

    An ingress VirtualService usually names an external host (``echo.example.com``) and routes
    to the origin Service, so it is found by its routes, not its hosts: every one that carries
    the gateway opt-in annotation, is not opted out, and has a route to the origin or managed
    routes of this origin gets the same route cloning as the mesh VirtualService, so QA traffic
    is routed at the first hop. The router never creates or deletes gateway VirtualServices.
    """
    header = routing_header(origin_service, namespace)
    relevant = relevant_clones(clones, origin_service=origin_service, namespace=namespace)
    plans: list[VirtualServicePlan] = []
    for observed in sorted(virtual_services, key=_age_key):
        if serves_mesh(observed) or not is_gateway_opted_in(observed) or is_opted_out(observed):
            continue
        vs_namespace = objects.namespace(observed) or namespace
        current = list((observed.get("spec") or {}).get("http") or [])
        if not any(
            belongs_to(r, header=header, vs_namespace=vs_namespace)
            or targets_origin(r, origin_service=origin_service, namespace=namespace, vs_namespace=vs_namespace)
            for r in current
        ):
            continue
        http = desired_http_routes(
            current,
            origin_service=origin_service,
            namespace=namespace,
            vs_namespace=vs_namespace,
            clones=relevant,
        )
        warnings = _impostor_warnings(observed, vs_namespace=vs_namespace)
        plans.append(
            _update_or_none(observed, current, http, header=header, vs_namespace=vs_namespace, warnings=warnings)
        )
    return tuple(plans)


def plan_virtual_services(
    *,
    origin_service: str,
    namespace: str,
    origin_ports: Sequence[int],
    clones: Sequence[Clone],
    virtual_services: Sequence[dict[str, Any]],
    api_version: str = DEFAULT_API_VERSION,
    origin_exists: bool = True,
) -> tuple[VirtualServicePlan, ...]:
    """The mesh plan (``plan_virtual_service``) followed by the opted-in gateway plans.

    For an origin that is not an existing Service (``origin_exists=False``: a typo, a hand-written
    annotation, an origin deleted) nothing is added: no VirtualService is created and no clone
    gains a route. Routes that already stand are kept (the origin may come back), those of clones
    no longer given are removed, so a clone's deletion is never held up by a missing origin.
    """
    if not origin_exists:
        standing = routed_by(virtual_services, origin_service=origin_service, namespace=namespace)
        clones = [c for c in clones if c.service in standing]
    return (
        plan_virtual_service(
            origin_service=origin_service,
            namespace=namespace,
            origin_ports=origin_ports,
            clones=clones,
            virtual_services=virtual_services,
            api_version=api_version,
            may_create=origin_exists,
        ),
        *plan_gateway_virtual_services(
            origin_service=origin_service,
            namespace=namespace,
            clones=clones,
            virtual_services=virtual_services,
        ),
    )
