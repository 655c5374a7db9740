"""Where Istio sends one HTTP request, given the VirtualServices: a pure model of the routing.

It exists so that tests (and ``service-router`` users) can prove what a route list *does*
rather than what it *looks like*: a request carrying the routing header reaches the clone, one
without it reaches the origin, one naming a clone that is gone falls through to the origin.

The model follows Istio's semantics for a request sent by a sidecar (``gateway="mesh"``) or
entering through a gateway:
- the VirtualService is chosen by host: hosts are resolved like Istio (a short name relative to
  the VirtualService's namespace; ``svc.ns`` / ``svc.ns.svc`` accepted as in ``hosts.py``); an
  exact host beats a wildcard, a longer wildcard beats a shorter one, and among equals the
  oldest VirtualService wins (Istio ignores the younger one, IST0109). Only VirtualServices
  bound to the gateway apply (no ``gateways`` or ``mesh`` among them for sidecars);
- http routes are tried in order; a route without ``match`` matches everything; a route
  matches when any of its match blocks does, a block when all of its conditions do;
- conditions: ``uri`` (``exact``/``regex`` on the path without the query string, ``prefix`` on
  the whole path, as Envoy does; ``ignoreUriCase`` for exact and prefix), ``scheme``
  (always ``http`` here), ``method``, ``authority`` (the host as sent), ``headers`` (names
  case-insensitive; an empty match means "present"), ``withoutHeaders`` (the block fails when
  the header matches; empty means "absent"), ``queryParams``, ``port``, ``sourceLabels``,
  ``sourceNamespace`` (the client's namespace) and ``gateways``. Regexes use RE2's full-match
  semantics, approximated by Python's ``re.fullmatch``; an invalid pattern never matches;
- ``delegate`` routes: when the parent route matches, the delegate VirtualService's routes
  are tried in order (Istio merges them into the parent's place); none matching falls through
  to the parent's next route;
- the destination of a weighted route is the one with the highest weight (the first among
  equal weights; a missing weight counts as 0 unless it is the only destination): the model
  answers "where does most of this traffic go", not a random draw;
- a route that redirects or answers directly forwards nowhere: ``None``, like no match at all
  (Envoy answers 404 then). Without any VirtualService the request goes to the host itself.

Not modelled: ``exportTo`` visibility, ``DestinationRule`` subsets, Sidecar resources, and
port-specific matching when ``port`` is unknown (a ``port`` condition then fails).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from service_router.hosts import canonical_host, host_matches

MESH = "mesh"


@dataclass(frozen=True)
class Destination:
    """Where a request goes: an FQDN (short names resolved), the port and subset if named."""

    host: str
    port: int | None = None
    subset: str | None = None
    weight: int | None = None


@dataclass(frozen=True)
class _Request:
    host: str
    namespace: str
    path: str
    method: str
    headers: Mapping[str, str]
    port: int | None
    gateway: str
    source_labels: Mapping[str, str]

    @property
    def path_only(self) -> str:
        return self.path.split("?", 1)[0]

    @property
    def query(self) -> dict[str, list[str]]:
        _, _, query = self.path.partition("?")
        return parse_qs(query, keep_blank_values=True)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _vs_namespace(vs: dict[str, Any], default: str) -> str:
    return str(_meta(vs).get("namespace") or default)


def _qualified_gateway(gateway: str, namespace: str) -> str:
    return gateway if gateway == MESH or "/" in gateway else f"{namespace}/{gateway}"


def _gateway_in(gateways: Sequence[str], *, request: _Request, vs_namespace: str) -> bool:
    if request.gateway == MESH:
        return MESH in gateways
    wanted = request.gateway
    for written in gateways:
        qualified = _qualified_gateway(str(written), vs_namespace)
        # A gateway given without a namespace matches by name only.
        if qualified == wanted or ("/" not in wanted and qualified.split("/", 1)[-1] == wanted):
            return True
    return False


def _applies(vs: dict[str, Any], request: _Request, default_namespace: str) -> bool:
    gateways = (vs.get("spec") or {}).get("gateways") or []
    if not gateways:
        return request.gateway == MESH
    return _gateway_in(gateways, request=request, vs_namespace=_vs_namespace(vs, default_namespace))


def _host_rank(vs: dict[str, Any], fqdn: str, default_namespace: str) -> int | None:
    """How specifically ``vs`` names ``fqdn``: a large number for an exact host, the suffix length for a wildcard."""
    namespace = _vs_namespace(vs, default_namespace)
    best: int | None = None
    for written in (vs.get("spec") or {}).get("hosts") or []:
        pattern = canonical_host(str(written), context_namespace=namespace)
        if not host_matches(pattern, fqdn):
            continue
        rank = 1_000_000 if not pattern.startswith("*") else len(pattern)
        best = rank if best is None else max(best, rank)
    return best


def find_virtual_service(
    virtual_services: Sequence[dict[str, Any]], *, host: str, namespace: str, gateway: str = MESH
) -> dict[str, Any] | None:
    """The VirtualService Istio applies to ``host`` for a client in ``namespace`` at ``gateway``."""
    request = _Request(canonical_host(host, context_namespace=namespace), namespace, "/", "GET", {}, None, gateway, {})
    ranked: list[tuple[int, str, str, str, dict[str, Any]]] = []
    for vs in virtual_services:
        if not _applies(vs, request, namespace):
            continue
        rank = _host_rank(vs, request.host, namespace)
        if rank is None:
            continue
        meta = _meta(vs)
        stamp = str(meta.get("creationTimestamp") or "\uffff")
        ranked.append((-rank, stamp, _vs_namespace(vs, namespace), str(meta.get("name", "")), vs))
    if not ranked:
        return None
    ranked.sort(key=lambda item: item[:4])
    return ranked[0][4]


# --- matching -------------------------------------------------------------------------------


def _string_match(match: Mapping[str, Any], value: str | None, *, ignore_case: bool = False) -> bool:
    """Istio's StringMatch; an empty one asks only for presence."""
    if value is None:
        return False
    if ignore_case:
        value = value.lower()
    if "exact" in match:
        expected = str(match["exact"])
        return value == (expected.lower() if ignore_case else expected)
    if "prefix" in match:
        expected = str(match["prefix"])
        return value.startswith(expected.lower() if ignore_case else expected)
    if "regex" in match:
        try:
            return re.fullmatch(str(match["regex"]), value) is not None
        except re.error:
            return False
    return True


def _uri_match(match: Mapping[str, Any], request: _Request, ignore_case: bool) -> bool:
    # Envoy compares exact and regex paths without the query string, prefixes with it.
    value = request.path if "prefix" in match else request.path_only
    return _string_match(match, value, ignore_case=ignore_case and "regex" not in match)


def _block_matches(block: Mapping[str, Any], request: _Request, vs_namespace: str) -> bool:
    headers = {k.lower(): v for k, v in request.headers.items()}
    checks: list[bool] = []
    if "uri" in block:
        checks.append(_uri_match(block["uri"] or {}, request, bool(block.get("ignoreUriCase"))))
    if "scheme" in block:
        checks.append(_string_match(block["scheme"] or {}, "http"))
    if "method" in block:
        checks.append(_string_match(block["method"] or {}, request.method))
    if "authority" in block:
        checks.append(_string_match(block["authority"] or {}, request.host))
    for name, match in (block.get("headers") or {}).items():
        checks.append(_string_match(match or {}, headers.get(str(name).lower())))
    for name, match in (block.get("withoutHeaders") or {}).items():
        checks.append(not _string_match(match or {}, headers.get(str(name).lower())))
    query = request.query
    for name, match in (block.get("queryParams") or {}).items():
        values = query.get(str(name))
        checks.append(_string_match(match or {}, values[0] if values else None))
    if "port" in block:
        checks.append(request.port is not None and int(block["port"]) == request.port)
    for key, value in (block.get("sourceLabels") or {}).items():
        checks.append(request.source_labels.get(str(key)) == str(value))
    if "sourceNamespace" in block:
        checks.append(str(block["sourceNamespace"]) == request.namespace)
    if block.get("gateways"):
        checks.append(_gateway_in(block["gateways"], request=request, vs_namespace=vs_namespace))
    return all(checks)


def _route_matches(route: Mapping[str, Any], request: _Request, vs_namespace: str) -> bool:
    blocks = route.get("match") or []
    return not blocks or any(_block_matches(block or {}, request, vs_namespace) for block in blocks)


def _pick(weighted: Sequence[Mapping[str, Any]], vs_namespace: str) -> Destination | None:
    if not weighted:
        return None
    best = max(range(len(weighted)), key=lambda i: (int(weighted[i].get("weight", 0) or 0), -i))
    item = weighted[best]
    destination = item.get("destination") or {}
    port = (destination.get("port") or {}).get("number")
    weight = item.get("weight")
    return Destination(
        host=canonical_host(str(destination.get("host", "")), context_namespace=vs_namespace),
        port=int(port) if port is not None else None,
        subset=destination.get("subset"),
        weight=int(weight) if weight is not None else None,
    )


def _walk(
    http: Sequence[Mapping[str, Any]],
    request: _Request,
    vs_namespace: str,
    virtual_services: Sequence[dict[str, Any]],
    depth: int,
) -> tuple[bool, Destination | None]:
    """(whether a route matched, its destination): a matching redirect is (True, None)."""
    for route in http:
        if not _route_matches(route, request, vs_namespace):
            continue
        if "delegate" in route:
            delegate = route["delegate"] or {}
            target = _delegate(virtual_services, delegate, vs_namespace)
            if target is None or depth > 0:
                # Istio ignores a missing delegate; delegation is only one level deep.
                continue
            matched, found = _walk(
                (target.get("spec") or {}).get("http") or [],
                request,
                _vs_namespace(target, vs_namespace),
                virtual_services,
                depth + 1,
            )
            if matched:
                return True, found
            continue
        return True, _pick(route.get("route") or [], vs_namespace)
    return False, None


def _delegate(
    virtual_services: Sequence[dict[str, Any]], delegate: Mapping[str, Any], vs_namespace: str
) -> dict[str, Any] | None:
    name, namespace = delegate.get("name"), delegate.get("namespace") or vs_namespace
    for vs in virtual_services:
        if _meta(vs).get("name") == name and _vs_namespace(vs, vs_namespace) == namespace:
            return vs
    return None


def evaluate(
    virtual_services: Sequence[dict[str, Any]],
    *,
    host: str,
    namespace: str,
    path: str = "/",
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    port: int | None = None,
    gateway: str = MESH,
    source_labels: Mapping[str, str] | None = None,
) -> Destination | None:
    """Where a request for ``host`` from a client in ``namespace`` goes, or None (Envoy's 404).

    ``host`` is written as the client writes it (``echo``, ``echo.default``, an FQDN; a
    ``:port`` suffix is allowed). ``gateway`` is ``"mesh"`` for a sidecar, else the gateway as
    ``<namespace>/<name>`` (or a bare name). See the module docstring for the semantics.
    """
    written_host, _, written_port = host.partition(":")
    if port is None and written_port.isdigit():
        port = int(written_port)
    request = _Request(
        host=written_host,
        namespace=namespace,
        path=path or "/",
        method=method.upper(),
        headers=headers or {},
        port=port,
        gateway=gateway,
        source_labels=source_labels or {},
    )
    fqdn = canonical_host(written_host, context_namespace=namespace)
    vs = find_virtual_service(virtual_services, host=written_host, namespace=namespace, gateway=gateway)
    if vs is None:
        return Destination(host=fqdn, port=port)
    _, found = _walk(
        (vs.get("spec") or {}).get("http") or [],
        request,
        _vs_namespace(vs, namespace),
        virtual_services,
        depth=0,
    )
    return found
