"""The desired routes of an origin's VirtualService, given its clones: pure planning.

The router edits the one VirtualService that already serves the origin host for in-mesh
traffic (Istio does not merge two VirtualServices for one host, IST0109), and creates one only
when none exists. Instead of a bare header route it *clones* every foreign http route that
sends traffic to the origin: the copy sits right before the original, adds the routing header
to each match block, and sends to the clone instead of the origin, so the original's rewrites,
timeouts, retries, fault injection, header manipulation and path/method matches apply to PR
traffic too.

Guarantees:
- a route whose name does not start with ``MANAGED_ROUTE_PREFIX`` is never changed, reordered
  or removed; managed routes are recomputed from scratch on every plan;
- the plan is a function of its inputs only (clones are sorted), and planning again on the
  planned result yields ``"none"``: no write in a steady state;
- a VirtualService is deleted only if it carries our managed-by label, never otherwise;
- inputs are never mutated: outputs are deep copies.

Weights: in a cloned route every destination naming the origin (any subset, same port) is
replaced by one destination to the clone carrying their summed weight; destinations to other
hosts keep their host and weight. So a 90/10 split between the origin and another service
becomes 90/10 between the clone and that service: the header replaces the origin, nothing else.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from controller_common.contract import (
    GATEWAY_OPT_IN_ANNOTATION,
    HEADER_PREFIX,
    MANAGED_BY_LABEL,
    MANAGED_ROUTE_PREFIX,
    SERVICE_ROUTER_MANAGER,
    VIRTUAL_SERVICE_OPT_OUT_ANNOTATION,
    managed_route_name,
    routing_header,
    routing_value,
    service_host,
)
from service_router.hosts import refers_to

DEFAULT_API_VERSION = "networking.istio.io/v1"
DEFAULT_ROUTE_NAME = "default"
"""Name of the route to the origin in a VirtualService the router creates (not managed: it is
the route the clone routes are copied from)."""
MESH_GATEWAY = "mesh"


@dataclass(frozen=True)
class Clone:
    """A clone Service standing in for ``origin_service``; ``ports`` are its Service port numbers."""

    service: str
    namespace: str
    origin_service: str
    ports: tuple[int, ...] = ()


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


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: dict[str, Any]) -> str:
    return str(_meta(obj).get("name", ""))


def _namespace(obj: dict[str, Any], default: str = "") -> str:
    return str(_meta(obj).get("namespace") or default)


def _annotation(obj: dict[str, Any], key: str) -> str:
    return str((_meta(obj).get("annotations") or {}).get(key, ""))


def is_managed_route(route: dict[str, Any]) -> bool:
    """Whether the router wrote this http route (its name carries the managed prefix)."""
    return str(route.get("name", "")).startswith(MANAGED_ROUTE_PREFIX)


def _routing_headers(route: dict[str, Any]) -> set[str]:
    return {
        str(name).lower()
        for block in route.get("match") or []
        for name in (block.get("headers") or {})
        if str(name).lower().startswith(HEADER_PREFIX)
    }


def belongs_to(route: dict[str, Any], *, header: str) -> bool:
    """Whether a managed route is this origin's to rewrite.

    One VirtualService may serve several origins (several hosts, or a gateway in front of
    several Services), so the router owns only the managed routes that match on *its* routing
    header, and leaves the other origins' managed routes where they are. A managed route that
    matches on no routing header at all is debris (a hand edit) that would catch every request:
    it is removed too.
    """
    if not is_managed_route(route):
        return False
    headers = _routing_headers(route)
    return not headers or header in headers


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
    return (_meta(virtual_service).get("labels") or {}).get(MANAGED_BY_LABEL) == SERVICE_ROUTER_MANAGER


def serves_host(virtual_service: dict[str, Any], *, service: str, namespace: str) -> bool:
    """Whether one of the VirtualService's hosts names ``service.namespace`` (no wildcards)."""
    vs_namespace = _namespace(virtual_service, namespace)
    hosts = (virtual_service.get("spec") or {}).get("hosts") or []
    return any(refers_to(str(h), service=service, namespace=namespace, context_namespace=vs_namespace) for h in hosts)


def _targets_origin(route: dict[str, Any], *, origin_service: str, namespace: str, vs_namespace: str) -> bool:
    """Whether an http route forwards (some of) its traffic to the origin host.

    Delegating, redirecting and direct-response routes do not forward, so they are not cloned.
    """
    if "delegate" in route:
        return False
    return any(
        refers_to(
            str((d.get("destination") or {}).get("host", "")),
            service=origin_service,
            namespace=namespace,
            context_namespace=vs_namespace,
        )
        for d in route.get("route") or []
    )


# --- selection ------------------------------------------------------------------------------


def _age_key(virtual_service: dict[str, Any]) -> tuple[str, str, str]:
    # RFC 3339 timestamps in UTC ("...Z") sort chronologically as strings; a missing one sorts last.
    stamp = str(_meta(virtual_service).get("creationTimestamp") or "\uffff")
    return (stamp, _namespace(virtual_service), _name(virtual_service))


def _label(virtual_service: dict[str, Any]) -> str:
    ns = _namespace(virtual_service)
    return f"{ns}/{_name(virtual_service)}" if ns else _name(virtual_service)


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
            warnings.append(f"VirtualService {_label(vs)} opted out ({VIRTUAL_SERVICE_OPT_OUT_ANNOTATION})")
            continue
        if not serves_mesh(vs):
            if not is_gateway_opted_in(vs):
                warnings.append(
                    f"gateway VirtualService {_label(vs)} without opt-in ({GATEWAY_OPT_IN_ANNOTATION}): ignored"
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
            f"picked {_label(picked)}, ignored {', '.join(_label(vs) for vs in ignored)}"
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


# --- route cloning --------------------------------------------------------------------------


def _route_name(clone: Clone, index: int) -> str:
    base = managed_route_name(clone.service)
    return base if index == 0 else f"{base}--{index}"


def _with_header(matches: list[dict[str, Any]] | None, header: str, value: str) -> list[dict[str, Any]]:
    condition = {"exact": value}
    if not matches:
        return [{"headers": {header: condition}}]
    out = []
    for block in matches:
        block = copy.deepcopy(block)
        block["headers"] = {**(block.get("headers") or {}), header: condition}
        out.append(block)
    return out


def _port_number(destination: dict[str, Any]) -> int | None:
    number = (destination.get("port") or {}).get("number")
    return int(number) if number is not None else None


def _swap_destinations(
    weighted: list[dict[str, Any]], *, clone: Clone, origin_service: str, namespace: str, vs_namespace: str
) -> list[dict[str, Any]] | None:
    """The route's destinations with the origin replaced by the clone; None if the clone lacks a port."""
    clone_host = service_host(clone.service, clone.namespace)
    out: list[dict[str, Any]] = []
    merged: dict[int | None, dict[str, Any]] = {}
    for item in weighted:
        destination = item.get("destination") or {}
        if not refers_to(
            str(destination.get("host", "")),
            service=origin_service,
            namespace=namespace,
            context_namespace=vs_namespace,
        ):
            out.append(copy.deepcopy(item))
            continue
        port = _port_number(destination)
        if port is not None and clone.ports and port not in clone.ports:
            return None
        if port in merged:
            # Several subsets of the origin on one port: one clone destination with their total weight.
            if "weight" in item:
                merged[port]["weight"] = merged[port].get("weight", 0) + item["weight"]
            continue
        swapped = copy.deepcopy(item)
        swapped_destination = {"host": clone_host}
        if "port" in destination:
            swapped_destination["port"] = copy.deepcopy(destination["port"])
        swapped["destination"] = swapped_destination
        merged[port] = swapped
        out.append(swapped)
    return out


def _clone_route(
    route: dict[str, Any],
    *,
    clone: Clone,
    index: int,
    header: str,
    origin_service: str,
    namespace: str,
    vs_namespace: str,
) -> dict[str, Any] | None:
    destinations = _swap_destinations(
        route.get("route") or [],
        clone=clone,
        origin_service=origin_service,
        namespace=namespace,
        vs_namespace=vs_namespace,
    )
    if destinations is None:
        return None
    copied = copy.deepcopy(route)
    copied["name"] = _route_name(clone, index)
    copied["match"] = _with_header(route.get("match"), header, routing_value(clone.service, clone.namespace))
    copied["route"] = destinations
    return copied


def _relevant_clones(clones: Sequence[Clone], *, origin_service: str, namespace: str) -> list[Clone]:
    unique = {c.service: c for c in clones if c.origin_service == origin_service and c.namespace == namespace}
    return [unique[name] for name in sorted(unique)]


def desired_http_routes(
    http: Sequence[dict[str, Any]],
    *,
    origin_service: str,
    namespace: str,
    vs_namespace: str,
    clones: Sequence[Clone],
) -> list[dict[str, Any]]:
    """The http route list with managed routes recomputed for ``clones``.

    Every managed route is dropped; foreign routes keep their order and content; before each
    foreign route that forwards to the origin, one copy per clone (sorted by name) is inserted.
    The first cloned route of a clone is named ``service-router--<clone>``, the i-th after it
    ``service-router--<clone>--<i>``. Clones of another origin or namespace are ignored.
    """
    header = routing_header(origin_service, namespace)
    relevant = _relevant_clones(clones, origin_service=origin_service, namespace=namespace)
    result: list[dict[str, Any]] = []
    index = 0
    for route in http:
        if belongs_to(route, header=header):
            continue
        if relevant and _targets_origin(
            route, origin_service=origin_service, namespace=namespace, vs_namespace=vs_namespace
        ):
            for clone in relevant:
                copied = _clone_route(
                    route,
                    clone=clone,
                    index=index,
                    header=header,
                    origin_service=origin_service,
                    namespace=namespace,
                    vs_namespace=vs_namespace,
                )
                if copied is not None:
                    result.append(copied)
            index += 1
        result.append(copy.deepcopy(route))
    return result


# --- the plan -------------------------------------------------------------------------------


def default_route(*, origin_service: str, namespace: str, origin_ports: Sequence[int]) -> dict[str, Any]:
    """The route to the origin in a VirtualService the router creates (port only if unambiguous)."""
    destination: dict[str, Any] = {"host": service_host(origin_service, namespace)}
    ports = sorted(set(origin_ports))
    if len(ports) == 1:
        destination["port"] = {"number": ports[0]}
    return {"name": DEFAULT_ROUTE_NAME, "route": [{"destination": destination}]}


def _managed_names(http: Sequence[dict[str, Any]], *, header: str) -> tuple[str, ...]:
    return tuple(str(r["name"]) for r in http if belongs_to(r, header=header))


def _routed_clones(http: Sequence[dict[str, Any]], *, header: str) -> tuple[str, ...]:
    """Clone Services named by the routing header of this origin's managed routes, sorted."""
    values = {
        str((block.get("headers") or {}).get(header, {}).get("exact", ""))
        for route in http
        if belongs_to(route, header=header)
        for block in route.get("match") or []
    }
    # The value is "<clone>.<namespace>"; clone names have no dots (DNS-1035 labels).
    return tuple(sorted({v.split(".", 1)[0] for v in values if v}))


def _new_name(virtual_services: Sequence[dict[str, Any]], *, origin_service: str, namespace: str) -> str:
    taken = {_name(vs) for vs in virtual_services if _namespace(vs, namespace) == namespace}
    if origin_service not in taken:
        return origin_service
    return f"{origin_service}-{SERVICE_ROUTER_MANAGER}"


def plan_virtual_service(
    *,
    origin_service: str,
    namespace: str,
    origin_ports: Sequence[int],
    clones: Sequence[Clone],
    virtual_services: Sequence[dict[str, Any]],
    api_version: str = DEFAULT_API_VERSION,
) -> VirtualServicePlan:
    """Create, update, delete or leave the origin's VirtualService so that it routes ``clones``.

    ``virtual_services`` are the observed ones (at least those of ``namespace``); they are not
    mutated. See the module docstring for the guarantees.
    """
    header = routing_header(origin_service, namespace)
    relevant = _relevant_clones(clones, origin_service=origin_service, namespace=namespace)
    observed, warnings = select_virtual_service(virtual_services, origin_service=origin_service, namespace=namespace)

    if observed is None:
        if not relevant:
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
        if not _managed_names(http, header=header):
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
            _managed_names(http, header=header),
            warnings,
            _routed_clones(http, header=header),
        )

    vs_namespace = _namespace(observed, namespace)
    current = list((observed.get("spec") or {}).get("http") or [])
    http = desired_http_routes(
        current,
        origin_service=origin_service,
        namespace=namespace,
        vs_namespace=vs_namespace,
        clones=relevant,
    )
    managed = _managed_names(http, header=header)
    if relevant and not managed:
        warnings = (
            *warnings,
            f"VirtualService {_label(observed)} has no http route to {origin_service}.{namespace} to clone",
        )
    if not relevant and is_owned(observed):
        return VirtualServicePlan("delete", observed, (), warnings)
    return _update_or_none(observed, current, http, header=header, warnings=warnings)


def _update_or_none(
    observed: dict[str, Any],
    current: list[dict[str, Any]],
    http: list[dict[str, Any]],
    *,
    header: str,
    warnings: tuple[str, ...],
) -> VirtualServicePlan:
    managed = _managed_names(http, header=header)
    if http == current:
        return VirtualServicePlan("none", observed, managed, warnings, _routed_clones(http, header=header))
    updated = copy.deepcopy(observed)
    spec = updated.setdefault("spec", {})
    if http:
        spec["http"] = http
    else:
        spec.pop("http", None)
    return VirtualServicePlan("update", updated, managed, warnings, _routed_clones(http, header=header))


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
    relevant = _relevant_clones(clones, origin_service=origin_service, namespace=namespace)
    plans: list[VirtualServicePlan] = []
    for observed in sorted(virtual_services, key=_age_key):
        if serves_mesh(observed) or not is_gateway_opted_in(observed) or is_opted_out(observed):
            continue
        vs_namespace = _namespace(observed, namespace)
        current = list((observed.get("spec") or {}).get("http") or [])
        if not any(
            belongs_to(r, header=header)
            or _targets_origin(r, origin_service=origin_service, namespace=namespace, vs_namespace=vs_namespace)
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
        plans.append(_update_or_none(observed, current, http, header=header, warnings=()))
    return tuple(plans)


def plan_virtual_services(
    *,
    origin_service: str,
    namespace: str,
    origin_ports: Sequence[int],
    clones: Sequence[Clone],
    virtual_services: Sequence[dict[str, Any]],
    api_version: str = DEFAULT_API_VERSION,
) -> tuple[VirtualServicePlan, ...]:
    """The mesh plan (``plan_virtual_service``) followed by the opted-in gateway plans."""
    return (
        plan_virtual_service(
            origin_service=origin_service,
            namespace=namespace,
            origin_ports=origin_ports,
            clones=clones,
            virtual_services=virtual_services,
            api_version=api_version,
        ),
        *plan_gateway_virtual_services(
            origin_service=origin_service,
            namespace=namespace,
            clones=clones,
            virtual_services=virtual_services,
        ),
    )
