"""Route cloning: the http route list of a VirtualService with one origin's managed routes recomputed.

Instead of a bare header route, the router *clones* every foreign http route that sends traffic
to the origin: the copy sits right before the original, adds the routing header to each of its
match blocks, and sends to the clone instead of the origin. The original's rewrites, timeouts,
retries, fault injection, header manipulation and path/method matches thus apply to PR traffic
too.

Guarantees:
- a route is the router's only when :func:`route_owner` proves it: its name is
  ``service-router--<clone>`` (or ``...--<n>``), every match block requires the routing header of
  one origin with the value ``<clone>.<namespace>``, and a destination is that clone's host. The
  name prefix alone proves nothing. Every other route is foreign: never changed, reordered or
  removed, and never given a name the router then writes too;
- this origin's routes are recomputed from scratch every time, and the routes of *other* origins
  (a VirtualService serving several hosts) are left alone;
- the result depends only on the inputs (clones are sorted by name), inputs are not mutated.

Weights: in a cloned route every destination naming the origin (any subset, same port) is
replaced by one destination to the clone carrying their summed weight; destinations to other
hosts keep their host and weight. So a 90/10 split between the origin and another service
becomes 90/10 between the clone and that service: the header replaces the origin, nothing else.
Mirrors are kept as they are (still shadowing to whatever the original mirrored).
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterator, Sequence
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


@dataclass(frozen=True)
class RouteOwner:
    """Whose route a proven router route is: the origin's routing ``header`` and the ``clone`` it sends to."""

    header: str
    clone: str
    namespace: str


def _match_blocks(route: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = route.get("match")
    return [b for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else []


def _exact_routing_headers(block: dict[str, Any]) -> set[tuple[str, str]]:
    headers = block.get("headers")
    if not isinstance(headers, dict):
        return set()
    return {
        (str(name).lower(), str(condition["exact"]))
        for name, condition in headers.items()
        if str(name).lower().startswith(HEADER_PREFIX) and isinstance(condition, dict) and "exact" in condition
    }


def _destination_hosts(route: dict[str, Any]) -> Iterator[str]:
    items = route.get("route")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("destination"), dict):
            yield str(item["destination"].get("host", ""))


def route_owner(route: dict[str, Any], *, vs_namespace: str) -> RouteOwner | None:
    """Who this http route belongs to if the router provably wrote it, else None (foreign).

    Proof takes all three of what the router writes: the name ``service-router--<clone>`` or
    ``service-router--<clone>--<n>``; in every match block, the routing header of one origin
    (``service-router-<origin>-<namespace>``) required to be exactly ``<clone>.<namespace>``; and
    a destination that is the clone's host. A route that only carries the name prefix (a hand edit,
    a copy, someone else's convention) is foreign.
    """
    if not isinstance(route, dict):
        return None  # not even an object: nobody's route the router could have written
    name = str(route.get("name", ""))
    blocks = _match_blocks(route)
    if not name.startswith(MANAGED_ROUTE_PREFIX) or not blocks or len(blocks) != len(route.get("match") or []):
        return None
    common = set.intersection(*(_exact_routing_headers(b) for b in blocks))
    for header, value in sorted(common):
        clone, _, namespace = value.partition(".")
        if not clone or not namespace or "." in namespace or value != routing_value(clone, namespace):
            continue
        if not header.endswith(f"-{namespace}") or len(header) <= len(HEADER_PREFIX) + len(namespace) + 1:
            continue
        base = managed_route_name(clone)
        if name != base and not re.fullmatch(re.escape(base) + r"--[0-9]+", name):
            continue
        if any(
            refers_to(host, service=clone, namespace=namespace, context_namespace=vs_namespace)
            for host in _destination_hosts(route)
        ):
            return RouteOwner(header=header, clone=clone, namespace=namespace)
    return None


def is_managed_route(route: dict[str, Any], *, vs_namespace: str) -> bool:
    """Whether the router provably wrote this http route, for any origin (see :func:`route_owner`)."""
    return route_owner(route, vs_namespace=vs_namespace) is not None


def belongs_to(route: dict[str, Any], *, header: str, vs_namespace: str) -> bool:
    """Whether a route is the router's route for the origin of ``header``, and so its to rewrite.

    One VirtualService may serve several origins (several hosts, or a gateway in front of
    several Services), so the router rewrites only its routes that match on *this* origin's
    routing header, and leaves the other origins' routes where they are.
    """
    owner = route_owner(route, vs_namespace=vs_namespace)
    return owner is not None and owner.header == header


def looks_managed(route: dict[str, Any]) -> bool:
    """Named like the router's routes (the prefix); whether it *is* one takes :func:`route_owner`."""
    return isinstance(route, dict) and str(route.get("name", "")).startswith(MANAGED_ROUTE_PREFIX)


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


def _route_name(clone: Clone, index: int, taken: frozenset[str]) -> str:
    """The ``index``-th name of the clone's routes, skipping names foreign routes already bear
    (Istio rejects duplicate route names, and a foreign route is never renamed)."""
    base = managed_route_name(clone.service)
    names = (base if n == 0 else f"{base}--{n}" for n in itertools.count())
    return next(itertools.islice((name for name in names if name not in taken), index, None))


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
    taken: frozenset[str],
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
    copied["name"] = _route_name(clone, index, taken)
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

    Every route of this origin's (:func:`belongs_to`) is dropped; all others keep their order and
    content; before each of them that forwards to the origin (and is no route of ours for another
    origin), one copy per clone (sorted by name) is inserted. The first cloned route of a clone is
    named ``service-router--<clone>``, the i-th after it ``service-router--<clone>--<i>``, skipping
    names that the kept routes bear. Clones of another origin or namespace are ignored.
    """
    header = routing_header(origin_service, namespace)
    relevant = relevant_clones(clones, origin_service=origin_service, namespace=namespace)
    kept = [r for r in http if not belongs_to(r, header=header, vs_namespace=vs_namespace)]
    taken = frozenset(str(r.get("name")) for r in kept if looks_managed(r))
    result: list[dict[str, Any]] = []
    index = 0
    for route in kept:
        # A route of ours for another origin is never copied: its copy would carry two routing
        # headers, prove to be that other origin's, and so be copied again on every plan.
        if (
            relevant
            and not is_managed_route(route, vs_namespace=vs_namespace)
            and targets_origin(route, origin_service=origin_service, namespace=namespace, vs_namespace=vs_namespace)
        ):
            for clone in relevant:
                copied = _clone_route(
                    route,
                    clone=clone,
                    index=index,
                    taken=taken,
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


def managed_names(http: Sequence[dict[str, Any]], *, header: str, vs_namespace: str) -> tuple[str, ...]:
    return tuple(str(r["name"]) for r in http if belongs_to(r, header=header, vs_namespace=vs_namespace))


def routed_clones(http: Sequence[dict[str, Any]], *, header: str, vs_namespace: str) -> tuple[str, ...]:
    """Clone Services this origin's routes (those of :func:`belongs_to`) send to, sorted."""
    owners = (route_owner(r, vs_namespace=vs_namespace) for r in http)
    return tuple(sorted({o.clone for o in owners if o is not None and o.header == header}))


def impostors(http: Sequence[dict[str, Any]], *, vs_namespace: str) -> tuple[str, ...]:
    """Names of routes named like the router's that it did not provably write (left alone)."""
    return tuple(
        str(r.get("name")) for r in http if looks_managed(r) and not is_managed_route(r, vs_namespace=vs_namespace)
    )
