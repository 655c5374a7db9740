"""Route cloning: the http route list of a VirtualService with one origin's managed routes recomputed.

Instead of a bare header route, the router *clones* every foreign http route that sends traffic
to the origin: the copy sits right before the original, adds the routing header to each of its
match blocks, and sends to the clone instead of the origin. The original's rewrites, timeouts,
retries, fault injection, header manipulation and path/method matches thus apply to PR traffic
too.

Guarantees:
- a route whose name does not start with ``MANAGED_ROUTE_PREFIX`` is never changed, reordered
  or removed; this origin's managed routes are recomputed from scratch every time, and the
  managed routes of *other* origins (a VirtualService serving several hosts) are left alone;
- the result depends only on the inputs (clones are sorted by name), inputs are not mutated.

Weights: in a cloned route every destination naming the origin (any subset, same port) is
replaced by one destination to the clone carrying their summed weight; destinations to other
hosts keep their host and weight. So a 90/10 split between the origin and another service
becomes 90/10 between the clone and that service: the header replaces the origin, nothing else.
Mirrors are kept as they are (still shadowing to whatever the original mirrored).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controller_common.contract import (
    HEADER_PREFIX,
    MANAGED_ROUTE_PREFIX,
    managed_route_name,
    routing_header,
    routing_value,
    service_host,
)
from service_router.hosts import refers_to


@dataclass(frozen=True)
class Clone:
    """A clone Service standing in for ``origin_service``; ``ports`` are its Service port numbers."""

    service: str
    namespace: str
    origin_service: str
    ports: tuple[int, ...] = ()


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


def targets_origin(route: dict[str, Any], *, origin_service: str, namespace: str, vs_namespace: str) -> bool:
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


def relevant_clones(clones: Sequence[Clone], *, origin_service: str, namespace: str) -> list[Clone]:
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
    relevant = relevant_clones(clones, origin_service=origin_service, namespace=namespace)
    result: list[dict[str, Any]] = []
    index = 0
    for route in http:
        if belongs_to(route, header=header):
            continue
        if relevant and targets_origin(
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


def managed_names(http: Sequence[dict[str, Any]], *, header: str) -> tuple[str, ...]:
    return tuple(str(r["name"]) for r in http if belongs_to(r, header=header))


def routed_clones(http: Sequence[dict[str, Any]], *, header: str) -> tuple[str, ...]:
    """Clone Services named by the routing header of this origin's managed routes, sorted."""
    values = {
        str((block.get("headers") or {}).get(header, {}).get("exact", ""))
        for route in http
        if belongs_to(route, header=header)
        for block in route.get("match") or []
    }
    # The value is "<clone>.<namespace>"; clone names have no dots (DNS-1035 labels).
    return tuple(sorted({v.split(".", 1)[0] for v in values if v}))
