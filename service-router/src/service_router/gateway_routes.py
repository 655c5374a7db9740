"""Gateway API routes derived per clone (GAMMA meshes): pure planning of HTTPRoutes and GRPCRoutes.

Routes attached to one Service merge by the Gateway API's precedence (GEP-1426): more header
matches win over fewer on the same path and method. So the router never edits the origin's own
routes: for each clone it writes routes of its own, attached to the origin Service, that hold a
copy of every rule of the origin's routes which sends to the origin, with the routing header
condition added to each match and the origin backend swapped for the clone (same port). Paths,
methods, filters and timeouts thus apply to PR traffic too; a request without the header, or
naming a clone that is gone, matches only the origin's rules.

Attaching the first route to a Service replaces the mesh's implicit routing, so while an origin
has no route of its own the router also owns a *baseline* route per origin port that sends
everything to the origin; it is created with the first clone and deleted with the last (and as
soon as the origin gets a route of its own).

Guarantees:
- a route is the router's only when it carries ``app.kubernetes.io/managed-by: service-router``
  and names this origin in :data:`ORIGIN_LABEL`; only those are updated or deleted, never the
  origin's routes, never a route of the same name that is not ours (the next name is taken);
- the CRD limits hold for every route planned: at most 16 rules, 64 matches per rule, 128 matches
  per route and 16 headers per match. Rules beyond a route's limits go to the clone's next route
  (``service-router--<clone>--<n>``); a match whose headers are full cannot take the routing
  header and is left out with a warning (its PR traffic then reaches the origin);
- the plan is a function of its inputs only, and planning on the planned result writes nothing;
  inputs are never mutated.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from controller_common import objects
from controller_common.contract import (
    MANAGED_BY_LABEL,
    SERVICE_ROUTER_MANAGER,
    managed_route_name,
    routing_header,
    routing_value,
)
from service_router.cloning import Clone, relevant_clones

GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_VERSION = f"{GATEWAY_GROUP}/v1"
HTTP_ROUTE = "HTTPRoute"
GRPC_ROUTE = "GRPCRoute"
ROUTE_KINDS = (HTTP_ROUTE, GRPC_ROUTE)

MAX_RULES = 16
MAX_MATCHES_PER_RULE = 64
MAX_MATCHES_PER_ROUTE = 128
MAX_HEADERS_PER_MATCH = 16

ORIGIN_LABEL = "service-router.mercari.com/origin"
"""On every Gateway API route the router writes: the origin Service it serves."""
CLONE_LABEL = "service-router.mercari.com/clone"
"""On a derived route: the clone Service it sends header traffic to (absent on a baseline route)."""
ROLE_LABEL = "service-router.mercari.com/role"
DERIVED = "derived"
BASELINE = "baseline"
GRPC_APP_PROTOCOLS = frozenset({"grpc", "kubernetes.io/h2c"})
DEFAULT_HTTP_MATCH = {"path": {"type": "PathPrefix", "value": "/"}}


@dataclass(frozen=True)
class ServicePort:
    """One port of the origin Service, as far as choosing HTTPRoute or GRPCRoute goes."""

    port: int
    name: str = ""
    app_protocol: str = ""

    @property
    def is_grpc(self) -> bool:
        name = self.name.lower()
        return self.app_protocol.lower() in GRPC_APP_PROTOCOLS or name == "grpc" or name.startswith("grpc-")


def service_ports(service: dict[str, Any] | None) -> tuple[ServicePort, ...]:
    ports = ((service or {}).get("spec") or {}).get("ports") or []
    return tuple(
        ServicePort(int(p["port"]), str(p.get("name") or ""), str(p.get("appProtocol") or ""))
        for p in ports
        if isinstance(p, dict) and "port" in p
    )


@dataclass(frozen=True)
class RouteWrite:
    """One write: ``route`` is the full desired object (create/update, update keeps the observed
    ``resourceVersion``) or the observed one (delete)."""

    action: Literal["create", "update", "delete"]
    route: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.route.get("kind", ""))


@dataclass(frozen=True)
class GatewayPlan:
    writes: tuple[RouteWrite, ...] = ()
    warnings: tuple[str, ...] = ()
    routed_clones: tuple[str, ...] = ()
    """Clone Services a derived route of this origin sends to once the plan is applied."""
    desired: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    """Every route of ours for this origin once the plan is applied."""


# --- reading routes -------------------------------------------------------------------------


def _labels(route: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in objects.labels(route).items()}


def is_ours(route: dict[str, Any]) -> bool:
    return bool(_labels(route).get(MANAGED_BY_LABEL) == SERVICE_ROUTER_MANAGER)


def is_ours_for(route: dict[str, Any], origin_service: str) -> bool:
    return is_ours(route) and _labels(route).get(ORIGIN_LABEL) == origin_service


def derived_clone(route: dict[str, Any]) -> str | None:
    """The clone a derived route of ours sends header traffic to, or None."""
    labels = _labels(route)
    return labels.get(CLONE_LABEL) if is_ours(route) and labels.get(ROLE_LABEL) == DERIVED else None


def names_service(ref: dict[str, Any], *, service: str, namespace: str, context_namespace: str) -> bool:
    """Whether a parentRef or backendRef names the core Service ``service`` in ``namespace``.

    A backendRef without ``kind`` is a Service (its default); a parentRef's default kind is
    ``Gateway``, so :func:`service_parent_refs` requires the kind to be written."""
    return bool(
        str(ref.get("group", "")) == ""
        and str(ref.get("kind", "Service")) == "Service"
        and str(ref.get("name", "")) == service
        and str(ref.get("namespace") or context_namespace) == namespace
    )


def service_parent_refs(route: dict[str, Any], *, service: str, namespace: str) -> list[dict[str, Any]]:
    """The route's parentRefs that attach it to the Service (GAMMA: group ``""``, kind ``Service``)."""
    context = objects.namespace(route) or namespace
    refs = (route.get("spec") or {}).get("parentRefs") or []
    return [
        r
        for r in refs
        if isinstance(r, dict)
        and "kind" in r
        and names_service(r, service=service, namespace=namespace, context_namespace=context)
    ]


def attached_routes(routes: Iterable[dict[str, Any]], *, service: str, namespace: str) -> list[dict[str, Any]]:
    return [r for r in routes if service_parent_refs(r, service=service, namespace=namespace)]


def precedence_key(route: dict[str, Any]) -> tuple[str, str, str]:
    """The Gateway API's tie-break between routes: oldest first, then ``namespace/name``."""
    stamp = str((route.get("metadata") or {}).get("creationTimestamp") or "\uffff")
    return (stamp, objects.namespace(route) or "", objects.name(route))


def gateway_routed(routes: Iterable[dict[str, Any]], *, origin_service: str | None = None) -> frozenset[str]:
    """Clones that a derived route of ours sends to (of one origin, or of any)."""
    return frozenset(
        clone
        for r in routes
        if (clone := derived_clone(r)) is not None and (origin_service is None or is_ours_for(r, origin_service))
    )


# --- deriving rules -------------------------------------------------------------------------


def _with_header(
    matches: list[dict[str, Any]], header: str, value: str, *, where: str, warnings: list[str]
) -> list[dict[str, Any]]:
    out = []
    for i, match in enumerate(matches):
        headers = [h for h in match.get("headers") or [] if str(h.get("name", "")).lower() != header]
        if len(headers) >= MAX_HEADERS_PER_MATCH:
            warnings.append(
                f"{where} match {i} has {len(headers)} header matches, the limit: the routing header cannot be "
                "added, so PR requests it matches reach the origin"
            )
            continue
        copied = copy.deepcopy(match)
        copied["headers"] = [*copy.deepcopy(headers), {"type": "Exact", "name": header, "value": value}]
        out.append(copied)
    return out


def _derive_rule(
    rule: dict[str, Any],
    *,
    kind: str,
    clone: Clone,
    origin_service: str,
    namespace: str,
    route_namespace: str,
    where: str,
    warnings: list[str],
) -> dict[str, Any] | None:
    """The rule for PR traffic to ``clone``; None if the rule does not send to the origin."""
    refs = rule.get("backendRefs") or []
    to_origin = [
        r
        for r in refs
        if isinstance(r, dict)
        and names_service(r, service=origin_service, namespace=namespace, context_namespace=route_namespace)
    ]
    if not to_origin:
        return None
    if clone.ports and any(r.get("port") is not None and int(r["port"]) not in clone.ports for r in to_origin):
        return None
    derived = copy.deepcopy(rule)
    backends = []
    for ref in copy.deepcopy(refs):
        if isinstance(ref, dict) and names_service(
            ref, service=origin_service, namespace=namespace, context_namespace=route_namespace
        ):
            ref["name"] = clone.service
            ref.pop("namespace", None)
        backends.append(ref)
    derived["backendRefs"] = backends
    matches = rule.get("matches") or ([copy.deepcopy(DEFAULT_HTTP_MATCH)] if kind == HTTP_ROUTE else [{}])
    value = routing_value(clone.service, clone.namespace)
    header = routing_header(origin_service, namespace)
    derived["matches"] = _with_header(matches, header, value, where=where, warnings=warnings)
    if not derived["matches"]:
        return None
    return derived


def _normal_parent(ref: dict[str, Any], origin_service: str) -> dict[str, Any]:
    out: dict[str, Any] = {"group": "", "kind": "Service", "name": origin_service}
    for key in ("sectionName", "port"):
        if key in ref:
            out[key] = ref[key]
    return out


@dataclass(frozen=True)
class _Base:
    """A route the derived ones copy: the origin's own, or the baseline."""

    kind: str
    parent_refs: tuple[str, ...]  # JSON of each normalized parentRef
    hostnames: tuple[str, ...]
    rules: tuple[dict[str, Any], ...]
    label: str
    namespace: str


def _bases(routes: Sequence[dict[str, Any]], *, origin_service: str, namespace: str, default_kind: str) -> list[_Base]:
    bases = []
    for route in sorted(routes, key=precedence_key):
        parents = service_parent_refs(route, service=origin_service, namespace=namespace)
        spec = route.get("spec") or {}
        bases.append(
            _Base(
                kind=str(route.get("kind") or default_kind),
                parent_refs=tuple(
                    sorted({json.dumps(_normal_parent(p, origin_service), sort_keys=True) for p in parents})
                ),
                hostnames=tuple(str(h) for h in spec.get("hostnames") or []),
                rules=tuple(r for r in spec.get("rules") or [] if isinstance(r, dict)),
                label=f"{route.get('kind') or default_kind} {objects.object_key(route)}",
                namespace=objects.namespace(route) or namespace,
            )
        )
    return bases


def baseline_routes(*, origin_service: str, namespace: str, ports: Sequence[ServicePort]) -> list[dict[str, Any]]:
    """One route per origin port that sends everything on it to the origin (GRPCRoute for gRPC ports)."""
    out = []
    unique = {p.port: p for p in ports}
    for number in sorted(unique):
        port = unique[number]
        kind = GRPC_ROUTE if port.is_grpc else HTTP_ROUTE
        name = f"{managed_route_name(origin_service)}--{BASELINE}"
        if len(unique) > 1:
            name = f"{name}-{number}"
        rule: dict[str, Any] = {
            "backendRefs": [{"group": "", "kind": "Service", "name": origin_service, "port": number, "weight": 1}]
        }
        if kind == HTTP_ROUTE:
            rule = {"matches": [copy.deepcopy(DEFAULT_HTTP_MATCH)], **rule}
        spec = {
            "parentRefs": [{"group": "", "kind": "Service", "name": origin_service, "port": number}],
            "rules": [rule],
        }
        out.append(_managed_route(kind, name, namespace, origin_service=origin_service, role=BASELINE, spec=spec))
    return out


def _managed_route(
    kind: str,
    name: str,
    namespace: str,
    *,
    origin_service: str,
    role: str,
    spec: dict[str, Any],
    clone: str | None = None,
) -> dict[str, Any]:
    """A route object the router owns: the one place its ownership labels are written."""
    labels = {MANAGED_BY_LABEL: SERVICE_ROUTER_MANAGER, ORIGIN_LABEL: origin_service}
    if clone is not None:
        labels[CLONE_LABEL] = clone
    labels[ROLE_LABEL] = role
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def _chunks(rules: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rules in order, split so that each part stays within the per-route limits."""
    parts: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    matches = 0
    for rule in rules:
        size = len(rule.get("matches") or [])
        if current and (len(current) >= MAX_RULES or matches + size > MAX_MATCHES_PER_ROUTE):
            parts.append(current)
            current, matches = [], 0
        current.append(rule)
        matches += size
    if current:
        parts.append(current)
    return parts


def _unique_rule_names(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rule names must be unique within a route: rules gathered from several keep the first."""
    seen: set[str] = set()
    out = []
    for rule in rules:
        name = rule.get("name")
        if name is not None and name in seen:
            rule = {k: v for k, v in rule.items() if k != "name"}
        elif name is not None:
            seen.add(str(name))
        out.append(rule)
    return out


def derived_routes(
    bases: Sequence[_Base],
    *,
    clone: Clone,
    origin_service: str,
    namespace: str,
    taken: dict[str, frozenset[str]],
    warnings: list[str],
) -> list[dict[str, Any]]:
    """The clone's routes: one per (kind, parentRefs, hostnames) of the bases, split at the limits."""
    groups: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[dict[str, Any]]] = {}
    for base in bases:
        key = (base.kind, base.parent_refs, base.hostnames)
        rules = groups.setdefault(key, [])
        for i, rule in enumerate(base.rules):
            derived = _derive_rule(
                rule,
                kind=base.kind,
                clone=clone,
                origin_service=origin_service,
                namespace=namespace,
                route_namespace=base.namespace,
                where=f"{base.label} rule {i}",
                warnings=warnings,
            )
            if derived is not None:
                rules.append(derived)
    out: list[dict[str, Any]] = []
    base_name = managed_route_name(clone.service)
    index = 0
    for (kind, parents, hostnames), rules in groups.items():
        for part in _chunks(rules):
            while True:
                name = base_name if index == 0 else f"{base_name}--{index}"
                index += 1
                if name not in taken.get(kind, frozenset()):
                    break
                warnings.append(f"{kind} {namespace}/{name} exists and is not the router's: named the route otherwise")
            spec: dict[str, Any] = {"parentRefs": [json.loads(p) for p in parents]}
            if hostnames:
                spec["hostnames"] = list(hostnames)
            spec["rules"] = _unique_rule_names(part)
            out.append(
                _managed_route(
                    kind, name, namespace, origin_service=origin_service, role=DERIVED, spec=spec, clone=clone.service
                )
            )
    return out


# --- the plan -------------------------------------------------------------------------------


def _key(route: dict[str, Any]) -> tuple[str, str]:
    return (str(route.get("kind", "")), objects.name(route))


def plan_gateway_routes(
    *,
    origin_service: str,
    namespace: str,
    origin_ports: Sequence[ServicePort],
    clones: Sequence[Clone],
    routes: Sequence[dict[str, Any]],
    origin_exists: bool = True,
) -> GatewayPlan:
    """Creates, updates and deletes that make this origin's Gateway API routes route ``clones``.

    ``routes`` are the observed HTTPRoutes and GRPCRoutes of ``namespace`` (each with its
    ``kind``). For an origin that is not an existing Service nothing new is routed: only clones
    that already have a derived route keep it (see :func:`service_router.routes.plan_virtual_services`).
    """
    warnings: list[str] = []
    relevant = relevant_clones(clones, origin_service=origin_service, namespace=namespace)
    ours = {_key(r): r for r in routes if is_ours_for(r, origin_service)}
    if not origin_exists:
        standing = gateway_routed(ours.values(), origin_service=origin_service)
        relevant = [c for c in relevant if c.service in standing]
    foreign = [r for r in attached_routes(routes, service=origin_service, namespace=namespace) if not is_ours(r)]
    taken: dict[str, frozenset[str]] = {
        kind: frozenset(objects.name(r) for r in routes if r.get("kind") == kind and not is_ours_for(r, origin_service))
        for kind in ROUTE_KINDS
    }
    desired: list[dict[str, Any]] = []
    if relevant:
        if foreign:
            bases = _bases(foreign, origin_service=origin_service, namespace=namespace, default_kind=HTTP_ROUTE)
        else:
            baseline = baseline_routes(origin_service=origin_service, namespace=namespace, ports=origin_ports)
            if not origin_ports:
                # The origin is gone (or has no ports): keep the baseline that stands, do not guess one.
                baseline = [copy.deepcopy(r) for r in ours.values() if _labels(r).get(ROLE_LABEL) == BASELINE]
            baseline = [r for r in baseline if objects.name(r) not in taken.get(str(r["kind"]), frozenset())]
            desired.extend(baseline)
            bases = _bases(baseline, origin_service=origin_service, namespace=namespace, default_kind=HTTP_ROUTE)
        for clone in relevant:
            desired.extend(
                derived_routes(
                    bases,
                    clone=clone,
                    origin_service=origin_service,
                    namespace=namespace,
                    taken=taken,
                    warnings=warnings,
                )
            )
        if not any(derived_clone(r) for r in desired):
            warnings.append(f"no route attached to Service {namespace}/{origin_service} sends to it on a clone's port")
    writes: list[RouteWrite] = []
    wanted = {_key(r) for r in desired}
    for route in desired:
        observed = ours.get(_key(route))
        if observed is None:
            writes.append(RouteWrite("create", route))
        elif (observed.get("spec") or {}) != route["spec"] or any(
            _labels(observed).get(k) != v for k, v in route["metadata"]["labels"].items()
        ):
            updated = copy.deepcopy(observed)
            updated["apiVersion"] = route["apiVersion"]
            updated["kind"] = route["kind"]
            updated["metadata"]["labels"] = {**_labels(observed), **route["metadata"]["labels"]}
            updated["spec"] = route["spec"]
            writes.append(RouteWrite("update", updated))
    for key in sorted(ours.keys() - wanted):
        writes.append(RouteWrite("delete", ours[key]))
    return GatewayPlan(
        writes=tuple(writes),
        warnings=tuple(dict.fromkeys(warnings)),
        routed_clones=tuple(sorted(gateway_routed(desired))),
        desired=tuple(desired),
    )


def after_route_writes(observed: Sequence[dict[str, Any]], writes: Iterable[RouteWrite]) -> list[dict[str, Any]]:
    """The routes as they stand once ``writes`` are applied to ``observed``."""
    standing = {(*_key(r), objects.namespace(r)): r for r in observed}
    for write in writes:
        key = (*_key(write.route), objects.namespace(write.route))
        if write.action == "delete":
            standing.pop(key, None)
        else:
            standing[key] = write.route
    return list(standing.values())
