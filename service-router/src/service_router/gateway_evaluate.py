"""Which Gateway API rule one request selects among the routes attached to a Service: a pure model.

The Gateway API counterpart of :mod:`service_router.evaluate` (Istio), so tests and the demo can
prove what derived routes *do*: a request with the routing header reaches the clone through a
copy of the origin's rule (its filters and timeouts included), one without it or with a stale
value reaches the origin.

The rules follow the specification's HTTPRouteRule and GRPCRouteRule documentation
(gateway-api.sigs.k8s.io/reference/spec, "matches"):
- a rule matches when any of its matches does, a match when all of its conditions do; a rule
  without matches is one ``PathPrefix /`` match (HTTP) or matches every call (gRPC);
- HTTP path types ``Exact``, ``PathPrefix`` (element-wise: ``/foo`` matches ``/foo`` and
  ``/foo/bar``, not ``/foobar``; a trailing slash is ignored) and ``RegularExpression``; header
  (names case-insensitive) and query-parameter (names exact) types ``Exact`` and
  ``RegularExpression``; ``method``. Regular expressions are full matches (Envoy's RE2 semantics,
  approximated by :func:`re.fullmatch`); an invalid one never matches;
- precedence across all rules of all routes, continuing on ties: an ``Exact`` path, then the
  ``PathPrefix`` with the most characters, then a method match, then the most header matches,
  then the most query-parameter matches (``RegularExpression`` paths are implementation-specific;
  here they rank between ``Exact`` and every ``PathPrefix``, longer patterns first); then the
  oldest route by creationTimestamp, then ``namespace/name`` alphabetically, then the first matching rule in list order;
- gRPC: ``method`` matches on ``service`` and ``method`` (``Exact`` or ``RegularExpression``);
  precedence: the most characters in a matching service, then in a matching method, then the
  most header matches, then the same route and rule tie-breaks.

Hostnames, parentRef sections and backend weights other than "the heaviest backend" are not
modelled: the model answers "which rule, and where does most of this traffic go".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from controller_common import objects
from service_router.gateway_routes import GRPC_ROUTE, HTTP_ROUTE, precedence_key, service_parent_refs


@dataclass(frozen=True)
class Selected:
    """The rule a request selected: its route, the rule's index, and the rule itself."""

    route: dict[str, Any]
    rule_index: int
    rule: dict[str, Any]

    @property
    def route_name(self) -> str:
        return str(objects.name(self.route))

    @property
    def filters(self) -> list[dict[str, Any]]:
        return list(self.rule.get("filters") or [])

    @property
    def timeouts(self) -> dict[str, Any]:
        return dict(self.rule.get("timeouts") or {})

    @property
    def backend(self) -> str | None:
        """The Service most of the traffic goes to (the heaviest backendRef, first among equals)."""
        refs = [r for r in self.rule.get("backendRefs") or [] if isinstance(r, dict)]
        if not refs:
            return None
        return str(max(refs, key=lambda r: int(r.get("weight", 1))).get("name"))


def _matches_value(kind: str, expected: str, actual: str | None) -> bool:
    if actual is None:
        return False
    if kind == "RegularExpression":
        try:
            return re.fullmatch(expected, actual) is not None
        except re.error:
            return False
    return expected == actual


def _prefix_matches(prefix: str, path: str) -> bool:
    prefix = prefix.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _path_rank(path_match: dict[str, Any] | None, path: str) -> tuple[int, int] | None:
    """(type rank, characters) of a matching path condition, higher is more specific; None: no match."""
    condition = path_match or {"type": "PathPrefix", "value": "/"}
    kind = str(condition.get("type", "PathPrefix"))
    value = str(condition.get("value", "/"))
    if kind == "Exact":
        return (3, len(value)) if path == value else None
    if kind == "RegularExpression":
        return (2, len(value)) if _matches_value(kind, value, path) else None
    if kind == "PathPrefix":
        return (1, len(value)) if _prefix_matches(value, path) else None
    return None


def _headers_match(conditions: Sequence[dict[str, Any]], headers: Mapping[str, str]) -> bool:
    lowered = {k.lower(): v for k, v in headers.items()}
    return all(
        _matches_value(
            str(c.get("type", "Exact")), str(c.get("value", "")), lowered.get(str(c.get("name", "")).lower())
        )
        for c in conditions
    )


def _query_match(conditions: Sequence[dict[str, Any]], query: Mapping[str, Sequence[str]]) -> bool:
    # Several values of one parameter: the first one counts (implementation-specific in the spec).
    return all(
        _matches_value(
            str(c.get("type", "Exact")),
            str(c.get("value", "")),
            next(iter(query.get(str(c.get("name", ""))) or ()), None),
        )
        for c in conditions
    )


def _http_match_rank(
    match: dict[str, Any], *, method: str, path: str, headers: Mapping[str, str], query: Mapping[str, Sequence[str]]
) -> tuple[int, ...] | None:
    path_rank = _path_rank(match.get("path"), path)
    if path_rank is None:
        return None
    if "method" in match and str(match["method"]).upper() != method.upper():
        return None
    header_conditions = match.get("headers") or []
    query_conditions = match.get("queryParams") or []
    if not _headers_match(header_conditions, headers) or not _query_match(query_conditions, query):
        return None
    return (*path_rank, int("method" in match), len(header_conditions), len(query_conditions))


def _grpc_match_rank(
    match: dict[str, Any], *, service: str, method: str, headers: Mapping[str, str]
) -> tuple[int, ...] | None:
    condition = match.get("method") or {}
    kind = str(condition.get("type", "Exact"))
    if "service" in condition and not _matches_value(kind, str(condition["service"]), service):
        return None
    if "method" in condition and not _matches_value(kind, str(condition["method"]), method):
        return None
    header_conditions = match.get("headers") or []
    if not _headers_match(header_conditions, headers):
        return None
    return (len(str(condition.get("service", ""))), len(str(condition.get("method", ""))), len(header_conditions))


def _select(routes: Sequence[dict[str, Any]], kind: str, rank: Any) -> Selected | None:
    best: tuple[tuple[int, ...], tuple[str, str, str], int] | None = None
    picked: Selected | None = None
    for route in routes:
        if str(route.get("kind", HTTP_ROUTE)) != kind:
            continue
        for index, rule in enumerate((route.get("spec") or {}).get("rules") or []):
            matches = rule.get("matches") or [{}]
            ranks = [r for r in (rank(m) for m in matches) if r is not None]
            if not ranks:
                continue
            # Higher rank first; then older route, then namespace/name, then rule order (smaller first).
            candidate = (tuple(-x for x in max(ranks)), precedence_key(route), index)
            if best is None or candidate < best:
                best, picked = candidate, Selected(route=route, rule_index=index, rule=rule)
    return picked


def attached(
    routes: Sequence[dict[str, Any]], *, service: str, namespace: str, port: int | None = None
) -> list[dict[str, Any]]:
    """The routes attached to the Service (to ``port`` when their parentRef names one)."""
    out = []
    for route in routes:
        parents = service_parent_refs(route, service=service, namespace=namespace)
        if any(port is None or p.get("port") in (None, port) for p in parents):
            out.append(route)
    return out


def select_http_rule(
    routes: Sequence[dict[str, Any]],
    *,
    path: str = "/",
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, Sequence[str]] | None = None,
) -> Selected | None:
    """The HTTPRoute rule the request selects among ``routes`` (already those of one parent), or None.

    ``path`` may carry a query string; ``query`` adds parameters to it.
    """
    only_path, _, query_string = path.partition("?")
    params: dict[str, list[str]] = parse_qs(query_string, keep_blank_values=True)
    for name, values in (query or {}).items():
        params.setdefault(name, []).extend(values)
    return _select(
        routes,
        HTTP_ROUTE,
        lambda m: _http_match_rank(m, method=method, path=only_path, headers=headers or {}, query=params),
    )


def select_grpc_rule(
    routes: Sequence[dict[str, Any]], *, service: str, method: str, headers: Mapping[str, str] | None = None
) -> Selected | None:
    """The GRPCRoute rule a call of ``service/method`` selects among ``routes``, or None."""
    return _select(
        routes, GRPC_ROUTE, lambda m: _grpc_match_rank(m, service=service, method=method, headers=headers or {})
    )


def route_http_request(
    routes: Sequence[dict[str, Any]],
    *,
    service: str,
    namespace: str,
    port: int | None = None,
    path: str = "/",
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
) -> str | None:
    """Where a request to ``service`` goes: the selected rule's backend; the Service itself when no
    route is attached (the mesh's implicit routing); None when routes are attached but none matches."""
    mine = attached(routes, service=service, namespace=namespace, port=port)
    if not mine:
        return service
    selected = select_http_rule(mine, path=path, method=method, headers=headers)
    return selected.backend if selected is not None else None
