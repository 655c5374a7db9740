"""What must hold whenever the system has converged, checked from the outside.

``check(before, after, github, expectations)`` is a pure function over plain dicts: two snapshots
of the cluster (every Deployment, Service and VirtualService of the watched namespaces, plus what
is known of the controller processes) and GitHub's open pull requests per repository. It returns
every :class:`Violation` it finds, so one run of an end-to-end test reports all that is wrong at
once. The properties, one ``kind`` each (:data:`KINDS`):

replicator (when it runs)
  every open eligible PR of an opted-in origin has exactly one clone Deployment on the PR's head
  and one clone per origin Service; clone Services select only their clone's pods and no origin
  Service selects a clone's pods; no clone of a closed or ineligible PR, none of an origin that
  opted out or is gone.
service-router (when it runs)
  every live clone Service whose origin exists is routed exactly once before each route of the
  origin's VirtualService that sends to the origin, matching on the origin's routing header with
  the clone's value; every route of the router's sends to a Service that exists, for the origin
  whose header it matches; no route named like the router's that it cannot have written appears;
  no deleted Service is held by the router's finalizer, and no Service that is neither a clone nor
  routed carries it.
everyone
  objects nobody asked the controllers to own (origins, their Services, every VirtualService's
  other fields and foreign routes) are byte-identical before and after, fields the API server owns
  aside; a leader of each expected controller is alive and ready.

"Eligible" is the replicator's own policy (``replicator.policy.select_pull_requests`` over
``parse_origin_config``) for origins whose policy is a function of the PR list alone; an origin
with an image gate, an idle expiry, invalid annotations or an unknown repository depends on more
than that, so the test names its expected PR numbers (``Expectations.environments``) or the
checker says it could not check it. Route ownership is decided here independently of the router's
code, from the contract in the README.

``snapshot(world)`` and ``assert_invariants(world, before, ...)`` are the thin layer over a running
:class:`world.World`.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controller_common import contract

KINDS: dict[str, str] = {
    "unchecked-origin": "an origin whose eligible PRs depend on more than the PR list, with no expectation given",
    "missing-clone": "an open eligible PR has no clone Deployment",
    "duplicate-clone": "a PR has more than one clone Deployment (or clone Service for one origin Service)",
    "unexpected-clone": "a clone of a PR that is closed or not eligible",
    "stale-head": "a clone runs another commit than the PR's head",
    "missing-clone-service": "a clone lacks the clone of one of its origin's Services",
    "orphan-clone": "a clone of an origin that is gone or opted out",
    "clone-service-selects-foreign-pods": "a clone Service selects pods other than its clone's",
    "origin-service-selects-clone-pods": "a Service that is no clone selects a clone's pods",
    "unrouted-clone": "a live clone Service lacks its route before a route of its origin",
    "duplicate-route": "a clone is routed more than once before one route of its origin, or two routes share a name",
    "misplaced-route": "a route of the router's is not right before a route to its origin",
    "route-to-missing-service": "a route of the router's sends to a Service that does not exist (or is going)",
    "wrong-header": "a route of the router's matches another origin's header than its clone's",
    "route-to-origin": "a route of the router's still sends (some) traffic to the origin",
    "malformed-managed-route": "a new route named like the router's that it cannot have written",
    "foreign-route-changed": "routes the router did not write were changed, reordered, added or removed",
    "foreign-object-changed": "an object the controllers do not own changed (server-owned fields aside)",
    "foreign-object-deleted": "an object the controllers do not own is gone",
    "finalizer-left": "a deleted Service is still held by the router's finalizer",
    "stray-finalizer": "a Service that is no clone and has no route carries the router's finalizer",
    "no-live-leader": "no process of a controller is alive, ready and leading",
}

ALL_CONTROLLERS = ("replicator", "service-router")
SERVER_METADATA = ("resourceVersion", "generation", "managedFields")
SERVER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)
"""Written by the API server or Kubernetes' own controllers, never by a user or ours."""
CLUSTER_SUFFIX = ".svc.cluster.local"


@dataclass(frozen=True)
class Violation:
    kind: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.subject}: {self.detail}"


@dataclass(frozen=True)
class Expectations:
    """What the test knows that the snapshots do not say."""

    environments: Mapping[str, Collection[int]] = field(default_factory=dict)
    """``namespace/origin`` -> the PR numbers that must have a clone, replacing the derived set."""
    controllers: Collection[str] = ALL_CONTROLLERS
    """Controllers that run in this world: their invariants apply, and a leader of each must be up."""
    changed: Collection[str] = ()
    """``Kind/namespace/name`` of objects the test itself changed or deleted between the snapshots."""
    now: datetime | None = None


# --- reading plain objects -------------------------------------------------------------------


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name") or "")


def _ns(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("namespace") or "default")


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return _meta(obj).get("labels") or {}


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return _meta(obj).get("annotations") or {}


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def _key(kind: str, obj: Mapping[str, Any]) -> str:
    return f"{kind}/{_ns(obj)}/{_name(obj)}"


def _managed_by(obj: Mapping[str, Any]) -> str | None:
    return _labels(obj).get(contract.MANAGED_BY_LABEL)


def _pod_labels(deployment: Mapping[str, Any]) -> Mapping[str, str]:
    return ((((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {}


def _selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """A Service selector selects pods carrying all of it; an empty one selects none (no endpoints)."""
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


def _fqdn(host: str, context_namespace: str) -> str:
    """The FQDN a VirtualService host or destination stands for (short names: its own namespace)."""
    host = host.lower().rstrip(".")
    parts = host.split(".")
    if not host or host == "*" or host.startswith("*."):
        return host
    if len(parts) == 1:
        return f"{host}.{context_namespace}{CLUSTER_SUFFIX}"
    if len(parts) == 2:
        return f"{host}{CLUSTER_SUFFIX}"
    if len(parts) == 3 and parts[2] == "svc":
        return f"{host}.cluster.local"
    return host


def _service_fqdn(name: str, namespace: str) -> str:
    return f"{name}.{namespace}{CLUSTER_SUFFIX}".lower()


def _destinations(route: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = route.get("route")
    if not isinstance(items, list):
        return []
    return [i["destination"] for i in items if isinstance(i, Mapping) and isinstance(i.get("destination"), Mapping)]


def _normalised(obj: Mapping[str, Any], *, drop_router_finalizer: bool = False) -> dict[str, Any]:
    """The object without what the API server (or Kubernetes' controllers) own."""
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = dict(out.get("metadata") or {})
    for key in SERVER_METADATA:
        meta.pop(key, None)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in SERVER_ANNOTATIONS}
    meta["annotations"] = annotations or None
    if drop_router_finalizer:
        meta["finalizers"] = [f for f in meta.get("finalizers") or [] if f != contract.ROUTER_FINALIZER] or None
    out["metadata"] = {k: v for k, v in meta.items() if v is not None}
    return out


# --- whose route is it ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    """A route the router provably wrote: the routing ``header`` it matches and the ``clone`` it sends to."""

    header: str
    clone: str


def _claim(route: Mapping[str, Any], vs_namespace: str) -> _Claim | None:
    """The README's ownership rule, implemented here on its own: name ``service-router--<clone>``
    (or ``--<n>``), every match block requiring one ``service-router-*`` header to be exactly
    ``<clone>.<namespace>``, and the clone's host among the destinations."""
    name = str(route.get("name") or "")
    if not name.startswith(contract.MANAGED_ROUTE_PREFIX):
        return None
    blocks = route.get("match")
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, Mapping) for b in blocks):
        return None
    rest = name[len(contract.MANAGED_ROUTE_PREFIX) :]
    candidates = {rest}
    numbered = re.fullmatch(r"(.+)--[0-9]+", rest)
    if numbered:
        candidates.add(numbered.group(1))
    hosts = {_fqdn(str(d.get("host") or ""), vs_namespace) for d in _destinations(route)}
    for clone in sorted(candidates):
        value = f"{clone}.{vs_namespace}"
        shared: set[str] | None = None
        for block in blocks:
            headers = block.get("headers") if isinstance(block.get("headers"), Mapping) else {}
            names = {
                str(h).lower()
                for h, condition in headers.items()
                if str(h).lower().startswith(contract.HEADER_PREFIX)
                and isinstance(condition, Mapping)
                and condition.get("exact") == value
            }
            shared = names if shared is None else shared & names
        if shared and _service_fqdn(clone, vs_namespace) in hosts:
            return _Claim(header=sorted(shared)[0], clone=clone)
    return None


def _targets(route: Mapping[str, Any], service: str, namespace: str, vs_namespace: str) -> bool:
    if "delegate" in route:
        return False
    wanted = _service_fqdn(service, namespace)
    return any(_fqdn(str(d.get("host") or ""), vs_namespace) == wanted for d in _destinations(route))


def _http(vs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    routes = (vs.get("spec") or {}).get("http")
    return [r for r in routes if isinstance(r, Mapping)] if isinstance(routes, list) else []


def _foreign_routes(vs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in _http(vs) if _claim(r, _ns(vs)) is None]


def _serves(vs: Mapping[str, Any], service: str, namespace: str) -> bool:
    wanted = _service_fqdn(service, namespace)
    return any(_fqdn(str(h), _ns(vs)) == wanted for h in (vs.get("spec") or {}).get("hosts") or [])


def _opted_out(vs: Mapping[str, Any]) -> bool:
    return str(_annotations(vs).get(contract.VIRTUAL_SERVICE_OPT_OUT_ANNOTATION, "")).lower() == "true"


def _mesh(vs: Mapping[str, Any]) -> bool:
    gateways = (vs.get("spec") or {}).get("gateways") or []
    return not gateways or "mesh" in gateways


def _port_allows(route: Mapping[str, Any], service: str, namespace: str, vs_namespace: str, ports: set[int]) -> bool:
    """Whether a clone with ``ports`` can stand in for every origin destination of the route."""
    wanted = _service_fqdn(service, namespace)
    for destination in _destinations(route):
        if _fqdn(str(destination.get("host") or ""), vs_namespace) != wanted:
            continue
        number = (destination.get("port") or {}).get("number")
        if number is not None and ports and int(number) not in ports:
            return False
    return True


# --- the check --------------------------------------------------------------------------------


def _by_kind(snap: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    return {
        "Deployment": list(snap.get("deployments") or []),
        "Service": list(snap.get("services") or []),
        "VirtualService": list(snap.get("virtualservices") or []),
    }


def check(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    github: Mapping[str, Sequence[Mapping[str, Any]]],
    expectations: Expectations = Expectations(),
) -> list[Violation]:
    """Every invariant that ``after`` breaks (see the module docstring); ``[]`` when all hold.

    ``before``/``after``: ``{"deployments": [...], "services": [...], "virtualservices": [...],
    "controllers": [{"name", "alive", "ready", "leading"}, ...]}``. ``github``: repository
    ``owner/name`` (any case) -> its pull requests as GitHub's REST API returns them.
    """
    found: list[Violation] = []
    if "replicator" in expectations.controllers:
        found += _replicator(after, github, expectations)
    if "service-router" in expectations.controllers:
        found += _router(after)
    found += _foreign(before, after, expectations)
    found += _leaders(after, expectations)
    return found


def _replicator(
    after: Mapping[str, Any], github: Mapping[str, Sequence[Mapping[str, Any]]], expectations: Expectations
) -> list[Violation]:
    from replicator.origin_config import AnnotationError, parse_origin_config
    from replicator.policy import select_pull_requests
    from replicator.pull_request import pull_request_from_api

    out: list[Violation] = []
    deployments = list(after.get("deployments") or [])
    services = list(after.get("services") or [])
    repos = {name.lower(): list(pulls) for name, pulls in github.items()}
    now = expectations.now or datetime.now(UTC)
    origins = {
        f"{_ns(d)}/{_name(d)}": d
        for d in deployments
        if _managed_by(d) != contract.REPLICATOR_MANAGER
        and str(_annotations(d).get(contract.REPOSITORY_ANNOTATION) or "").strip()
        and not _deleting(d)
    }
    clone_objects = [o for o in [*deployments, *services] if _managed_by(o) == contract.REPLICATOR_MANAGER]

    def origin_of(obj: Mapping[str, Any]) -> str:
        name = _annotations(obj).get(contract.CLONE_ORIGIN_ANNOTATION) or _labels(obj).get(contract.ORIGIN_LABEL)
        return f"{_ns(obj)}/{name}"

    for obj in clone_objects:
        if origin_of(obj) not in origins:
            kind = "Deployment" if obj in deployments else "Service"
            out.append(Violation("orphan-clone", _key(kind, obj), f"its origin {origin_of(obj)} is gone or opted out"))

    for key, origin in sorted(origins.items()):
        namespace = key.split("/", 1)[0]
        heads: dict[int, str] = {}
        explicit = expectations.environments.get(key)
        try:
            config = parse_origin_config(origin)
        except AnnotationError as exc:
            config, reason = None, f"annotations invalid ({exc})"
        else:
            reason = ""
            pulls = repos.get(config.repository.full_name.lower())
            if pulls is None:
                reason = f"repository {config.repository.full_name} not in the GitHub state"
            else:
                open_prs = [pull_request_from_api(p) for p in pulls if p.get("state", "open") == "open"]
                if config.image_gate is None:
                    heads = {pr.number: pr.head_sha for pr in open_prs}
                if config.image_gate is not None or config.idle_expiry is not None:
                    reason = "its image gate or idle expiry depends on more than the PR list"
                elif explicit is None:
                    explicit = [pr.number for pr in select_pull_requests(open_prs, config, now=now).selected]
        if explicit is None:
            out.append(Violation("unchecked-origin", f"Deployment/{key}", f"{reason}: pass Expectations.environments"))
            continue
        expected = set(explicit)
        mine = [o for o in clone_objects if origin_of(o) == key]
        clones: dict[int, list[Mapping[str, Any]]] = {}
        for d in (o for o in mine if o in deployments):
            clones.setdefault(_pr_number(d), []).append(d)
        for number in sorted(expected - set(clones)):
            out.append(Violation("missing-clone", f"Deployment/{key}", f"PR #{number} has no clone Deployment"))
        for number, found in sorted(clones.items()):
            names = sorted(_name(d) for d in found)
            if number not in expected:
                out.append(
                    Violation("unexpected-clone", f"Deployment/{namespace}/{names[0]}", f"PR #{number} is not eligible")
                )
            if len(found) > 1:
                out.append(Violation("duplicate-clone", f"Deployment/{key}", f"PR #{number} has {names}"))
            for d in found:
                head = _annotations(d).get(contract.CLONE_HEAD_SHA_ANNOTATION)
                if number in heads and head != heads[number]:
                    out.append(
                        Violation(
                            "stale-head", _key("Deployment", d), f"runs {head}, PR #{number} head is {heads[number]}"
                        )
                    )

        origin_pods = _pod_labels(origin)
        origin_services = [
            s
            for s in services
            if _ns(s) == namespace
            and _managed_by(s) != contract.REPLICATOR_MANAGER
            and _selects((s.get("spec") or {}).get("selector"), origin_pods)
        ]
        clone_services = [o for o in mine if o in services]
        for number in sorted(expected & set(clones)):
            for svc in origin_services:
                standing = [
                    c
                    for c in clone_services
                    if _pr_number(c) == number and _annotations(c).get(contract.ORIGIN_SERVICE_ANNOTATION) == _name(svc)
                ]
                subject = f"Service/{namespace}/{_name(svc)}"
                if not standing:
                    out.append(Violation("missing-clone-service", subject, f"no clone of it for PR #{number}"))
                elif len(standing) > 1:
                    found_names = sorted(_name(c) for c in standing)
                    out.append(Violation("duplicate-clone", subject, f"PR #{number} has {found_names}"))
        for svc in clone_services:
            selector = (svc.get("spec") or {}).get("selector")
            own = [d for d in clones.get(_pr_number(svc), [])]
            others = [d for d in deployments if _ns(d) == namespace and all(d is not o for o in own)]
            if not any(_selects(selector, _pod_labels(d)) for d in own) or any(
                _selects(selector, _pod_labels(d)) for d in others
            ):
                out.append(
                    Violation(
                        "clone-service-selects-foreign-pods",
                        _key("Service", svc),
                        f"selector {selector} does not select exactly its clone's pods",
                    )
                )

    clone_pods = [d for d in deployments if _managed_by(d) == contract.REPLICATOR_MANAGER]
    for svc in services:
        if _managed_by(svc) == contract.REPLICATOR_MANAGER:
            continue
        selector = (svc.get("spec") or {}).get("selector")
        hit = sorted(_name(d) for d in clone_pods if _ns(d) == _ns(svc) and _selects(selector, _pod_labels(d)))
        if hit:
            out.append(Violation("origin-service-selects-clone-pods", _key("Service", svc), f"selects pods of {hit}"))
    return out


def _pr_number(obj: Mapping[str, Any]) -> int:
    try:
        return int(_labels(obj).get(contract.PULL_REQUEST_LABEL, "-1"))
    except ValueError:
        return -1


def _router(after: Mapping[str, Any]) -> list[Violation]:
    out: list[Violation] = []
    services = list(after.get("services") or [])
    virtual_services = list(after.get("virtualservices") or [])
    by_name = {(_ns(s), _name(s)): s for s in services}

    def is_live_service(namespace: str, name: str) -> bool:
        found = by_name.get((namespace, name))
        return found is not None and not _deleting(found)

    routed_to: set[tuple[str, str]] = set()
    for vs in virtual_services:
        vs_ns = _ns(vs)
        names = Counter(str(r.get("name")) for r in _http(vs) if r.get("name"))
        for duplicate in sorted(n for n, c in names.items() if c > 1):
            out.append(
                Violation("duplicate-route", _key("VirtualService", vs), f"{names[duplicate]} routes named {duplicate}")
            )
        for route in _http(vs):
            claim = _claim(route, vs_ns)
            if claim is None:
                continue
            routed_to.add((vs_ns, claim.clone))
            subject = f"VirtualService/{vs_ns}/{_name(vs)} route {route.get('name')}"
            if not is_live_service(vs_ns, claim.clone):
                out.append(Violation("route-to-missing-service", subject, f"Service {claim.clone} does not exist"))
                continue
            origin = _annotations(by_name[(vs_ns, claim.clone)]).get(contract.ORIGIN_SERVICE_ANNOTATION)
            if not origin or claim.header != contract.routing_header(origin, vs_ns):
                out.append(
                    Violation("wrong-header", subject, f"matches {claim.header}; {claim.clone}'s origin is {origin!r}")
                )
                continue
            if any(_targets({"route": [{"destination": d}]}, origin, vs_ns, vs_ns) for d in _destinations(route)):
                out.append(Violation("route-to-origin", subject, f"still sends traffic to {origin}"))
            for dest in _destinations(route):
                fqdn = _fqdn(str(dest.get("host") or ""), vs_ns)
                if fqdn.endswith(CLUSTER_SUFFIX):
                    dest_name, _, dest_ns = fqdn[: -len(CLUSTER_SUFFIX)].partition(".")
                    if not is_live_service(dest_ns, dest_name):
                        out.append(Violation("route-to-missing-service", subject, f"destination {fqdn} does not exist"))

    clones_by_origin: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for svc in services:
        origin = _annotations(svc).get(contract.ORIGIN_SERVICE_ANNOTATION)
        if origin and not _deleting(svc):
            clones_by_origin.setdefault((_ns(svc), origin), []).append(svc)
    for (namespace, origin), clones in sorted(clones_by_origin.items()):
        if not is_live_service(namespace, origin):
            continue  # OriginNotFound: nothing is added (routes already standing may stay)
        out += _routed_once(namespace, origin, clones, virtual_services)

    for svc in services:
        if contract.ROUTER_FINALIZER not in (_meta(svc).get("finalizers") or []):
            continue
        if _deleting(svc):
            out.append(
                Violation("finalizer-left", _key("Service", svc), "deleted, but the router's finalizer holds it")
            )
        elif not _annotations(svc).get(contract.ORIGIN_SERVICE_ANNOTATION) and (_ns(svc), _name(svc)) not in routed_to:
            out.append(Violation("stray-finalizer", _key("Service", svc), "no clone and no route, yet the finalizer"))
    return out


def _routed_once(
    namespace: str, origin: str, clones: list[Mapping[str, Any]], virtual_services: list[Mapping[str, Any]]
) -> list[Violation]:
    out: list[Violation] = []
    header = contract.routing_header(origin, namespace)
    serving = sorted(
        (vs for vs in virtual_services if _serves(vs, origin, namespace) and _mesh(vs)),
        key=lambda vs: (str(_meta(vs).get("creationTimestamp") or "\uffff"), _ns(vs), _name(vs)),
    )
    if any(_opted_out(vs) for vs in serving):
        return out  # the router keeps away, and never creates a second VirtualService next to it
    clone_names = sorted(_name(c) for c in clones)
    if not serving:
        out += [
            Violation("unrouted-clone", f"Service/{namespace}/{c}", f"no VirtualService serves {origin}")
            for c in clone_names
        ]
        return out
    vs = serving[0]
    vs_ns = _ns(vs)
    http = _http(vs)
    ports = {
        _name(c): {int(p["port"]) for p in (c.get("spec") or {}).get("ports") or [] if isinstance(p, Mapping)}
        for c in clones
    }
    placed: set[int] = set()
    for index, route in enumerate(http):
        if _claim(route, vs_ns) is not None or not _targets(route, origin, namespace, vs_ns):
            continue
        block: list[str] = []
        position = index - 1
        while position >= 0:
            claim = _claim(http[position], vs_ns)
            if claim is None or claim.header != header:
                break
            block.append(claim.clone)
            placed.add(position)
            position -= 1
        counts = Counter(block)
        subject = f"VirtualService/{vs_ns}/{_name(vs)}"
        for clone in clone_names:
            if not _port_allows(route, origin, namespace, vs_ns, ports[clone]):
                continue
            if counts[clone] == 0:
                out.append(
                    Violation(
                        "unrouted-clone", f"Service/{namespace}/{clone}", f"no route before {route.get('name')!r}"
                    )
                )
            elif counts[clone] > 1:
                out.append(
                    Violation(
                        "duplicate-route", subject, f"{clone} routed {counts[clone]}x before {route.get('name')!r}"
                    )
                )
    for index, route in enumerate(http):
        claim = _claim(route, vs_ns)
        if claim is not None and claim.header == header and index not in placed:
            out.append(
                Violation(
                    "misplaced-route",
                    f"VirtualService/{vs_ns}/{_name(vs)} route {route.get('name')}",
                    f"not right before a route to {origin}",
                )
            )
    return out


def _foreign(before: Mapping[str, Any], after: Mapping[str, Any], expectations: Expectations) -> list[Violation]:
    out: list[Violation] = []
    changed = set(expectations.changed)
    previous, current = _by_kind(before), _by_kind(after)
    for kind, objs in previous.items():
        now_by_key = {_key(kind, o): o for o in current[kind]}
        for old in objs:
            key = _key(kind, old)
            owner = _managed_by(old)
            if key in changed or owner in (contract.REPLICATOR_MANAGER, contract.SERVICE_ROUTER_MANAGER):
                continue
            new = now_by_key.get(key)
            if new is None:
                out.append(Violation("foreign-object-deleted", key, "was there before"))
                continue
            if kind == "VirtualService":
                out += _foreign_routes_kept(key, old, new)
                old_n, new_n = _normalised(old), _normalised(new)
                old_n.get("spec", {}).pop("http", None)
                new_n.get("spec", {}).pop("http", None)
            else:
                old_n = _normalised(old, drop_router_finalizer=kind == "Service")
                new_n = _normalised(new, drop_router_finalizer=kind == "Service")
            if old_n != new_n:
                out.append(Violation("foreign-object-changed", key, _difference(old_n, new_n)))
    return out


def _foreign_routes_kept(key: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Violation]:
    kept = _foreign_routes(old)
    now = _foreign_routes(new)
    fresh = [r for r in now if str(r.get("name") or "").startswith(contract.MANAGED_ROUTE_PREFIX) and r not in kept]
    out = [
        Violation(
            "malformed-managed-route", f"{key} route {r.get('name')}", "named like the router's, not provably its"
        )
        for r in fresh
    ]
    now = [r for r in now if r not in fresh]
    if now != kept:
        names = ([str(r.get("name")) for r in kept], [str(r.get("name")) for r in now])
        out.append(Violation("foreign-route-changed", key, f"foreign routes were {names[0]}, are {names[1]}"))
    return out


def _difference(old: Any, new: Any, path: str = "") -> str:
    """Where two JSON values first differ, for a readable report."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for k in sorted(set(old) | set(new)):
            if old.get(k) != new.get(k):
                return _difference(old.get(k), new.get(k), f"{path}.{k}")
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                return _difference(a, b, f"{path}[{i}]")
    return f"{path or '.'}: {json.dumps(old, default=str)[:200]} -> {json.dumps(new, default=str)[:200]}"


def _leaders(after: Mapping[str, Any], expectations: Expectations) -> list[Violation]:
    processes = list(after.get("controllers") or [])
    out = []
    for name in expectations.controllers:
        mine = [p for p in processes if p.get("name") == name]
        if not any(p.get("alive") and p.get("ready") and p.get("leading") for p in mine):
            seen = [{k: p.get(k) for k in ("alive", "ready", "leading")} for p in mine]
            out.append(Violation("no-live-leader", name, f"processes: {seen or 'none'}"))
    return out


def report(violations: Iterable[Violation]) -> str:
    lines = [str(v) for v in violations]
    return f"{len(lines)} invariant(s) broken:\n  " + "\n  ".join(lines) if lines else "all invariants hold"


# --- over a running World ---------------------------------------------------------------------


def _process_state(process: Any) -> dict[str, Any]:
    """Alive, ready (its /readyz, found from its "serving" log line) and leading (workers started)."""
    import requests

    alive = bool(process.running)
    ready = leading = False
    if alive:
        for line in process.logs().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict):
                continue
            if entry.get("event") == "caches synced; starting workers":
                leading = True
            if entry.get("event") == "serving" and "/readyz" in (entry.get("paths") or []):
                try:
                    response = requests.get(f"http://127.0.0.1:{entry['port']}/readyz", timeout=2)
                    ready = ready or response.status_code == 200
                except requests.RequestException:
                    pass
    return {"name": process.name.split("#")[0], "alive": alive, "ready": ready, "leading": leading}


def snapshot(world: Any, namespaces: Sequence[str | None] = (None,)) -> dict[str, Any]:
    """Every Deployment, Service and VirtualService of ``namespaces`` (``None``: all), and the processes."""
    from controller_common.kube import DEPLOYMENTS, SERVICES
    from world import VIRTUAL_SERVICES

    out: dict[str, Any] = {}
    for key, resource in (("deployments", DEPLOYMENTS), ("services", SERVICES), ("virtualservices", VIRTUAL_SERVICES)):
        items: list[dict[str, Any]] = []
        for namespace in namespaces:
            items += world.client.list(resource, namespace)[0]
        out[key] = items
    out["controllers"] = [_process_state(p) for p in world.controllers]
    return out


def github_state(world: Any, snap: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The open pull requests, through GitHub's REST API, of every repository an origin names."""
    import requests

    from replicator.repository import parse_repository
    from world import TOKEN

    names = set()
    for deployment in snap.get("deployments") or []:
        text = _annotations(deployment).get(contract.REPOSITORY_ANNOTATION)
        if text:
            try:
                names.add(parse_repository(text).full_name)
            except ValueError:
                continue
    state: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(names):
        response = requests.get(
            f"{world.github.api_url}/repos/{name}/pulls",
            params={"state": "open", "per_page": "100"},
            headers={"Authorization": f"token {TOKEN}"},
            timeout=10,
        )
        if response.status_code == 200:
            state[name] = response.json()
    return state


def assert_invariants(
    world: Any,
    before: Mapping[str, Any],
    expectations: Expectations = Expectations(),
    *,
    namespaces: Sequence[str | None] = (None,),
    timeout: float = 15.0,
) -> None:
    """Assert that the World settles, within ``timeout``, into a state where every invariant holds.

    Called at the converged end of a test: the last condition the test waited for may be met a
    moment before the last write (a finalizer released after the route went), so the state is
    re-read until it holds or the deadline passes; then every violation of the last read is shown.
    """
    from e2e_support import wait_until

    last: list[list[Violation]] = []

    def holds() -> bool:
        after = snapshot(world, namespaces)
        last[:] = [check(before, after, github_state(world, after), expectations)]
        return not last[0]

    try:
        wait_until(holds, timeout=timeout, interval=0.2, message="invariants")
    except AssertionError:
        raise AssertionError(f"{report(last[0])}\n{world.logs()[-4000:]}") from None
