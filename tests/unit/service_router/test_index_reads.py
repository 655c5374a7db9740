"""Plans from index reads equal plans from whole-namespace lists, on randomized namespaces.

The reconcilers read an origin's objects by informer index (:mod:`service_router.indexes`) instead
of listing its namespace. Here every step of a reconcile is computed twice for every key of a
randomized world — many origins and clones in two namespaces whose names collide in routing headers
(``a`` in ``b-c`` and ``a-b`` in ``c``), hosts in every spelling, foreign routes, routes of ours
written by the planner itself and by hand, look-alike routes, Services whose origin annotation was
removed while a route of ours still reaches them, gateway and opted-out VirtualServices, Gateway
API routes of ours and of others, and objects of shapes the planners trip over: once the way the
reconcilers read before (every object of the namespace), once through the reconcilers' own index
reads; the routes planned, the Services released and the backend chosen must be equal, errors
included. The caches compute the index with the functions ``__main__`` registers.

Hypothesis: a fixed seed and a few hundred examples by default, as in ``tests/unit/fuzz``
(``HYPOTHESIS_PROFILE=long`` explores 5,000 from a random seed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from controller_common import contract, objects
from controller_common.metrics import Metrics
from service_router.finalizers import after_writes, clone_of, is_live_clone, routed_services, to_release
from service_router.gateway_api import (
    ROUTING_APIS,
    RoutingApis,
    grpc_route_resource,
    http_route_resource,
    uses_gateway_api,
)
from service_router.gateway_reconcile import GatewayRouteReconciler
from service_router.gateway_routes import (
    BASELINE,
    CLONE_LABEL,
    DERIVED,
    GRPC_ROUTE,
    HTTP_ROUTE,
    ORIGIN_LABEL,
    ROLE_LABEL,
    after_route_writes,
    gateway_routed,
    plan_gateway_routes,
    service_ports,
)
from service_router.indexes import CLONE_OF_INDEX, INDEXES, virtual_service_index
from service_router.istio import virtual_service_resource
from service_router.metrics import RouterMetrics
from service_router.reconcile import RouteReconciler
from service_router.routes import Clone, plan_virtual_services, routed_by

NS, OTHER = "c", "b-c"
NAMESPACES = (NS, OTHER)
NAMES = ("a", "a-b", "echo", "echo-pr1", "echo-pr2", "a-pr1", "a-b-pr1", "gone")
ORIGINS = ("a", "a-b", "echo", "Echo", "frontend.shop", "missing")
PLANNED = ("a", "a-b", "echo")
VS_NAMES = (*NAMES, "a-service-router", "echo-service-router", "echo-service-router-2", "shared")
STAMPS = ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", None)
VS = virtual_service_resource("v1")
HTTP, GRPC = http_route_resource(), grpc_route_resource()
METRICS = RouterMetrics.create(Metrics("service_router_index_reads"))
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
"""A name a Service can bear: the reconciler plans no other origin (``reconcile._DNS_LABEL``)."""
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")


class ListCache:
    """An informer stand-in over a list of frozen objects; its index is computed by ``INDEXES``."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        frozen = {objects.object_key(o): objects.freeze(o) for o in items}
        self.items = [frozen[k] for k in sorted(frozen)]

    def get(self, key: str) -> dict[str, Any] | None:
        return next((o for o in self.items if objects.object_key(o) == key), None)

    def list_namespace(self, namespace: str) -> list[dict[str, Any]]:
        return [o for o in self.items if objects.namespace(o) == namespace]

    def by_index(self, name: str, value: str) -> list[dict[str, Any]]:
        return [o for o in self.items if value in INDEXES[name](o)]


# --- the world ------------------------------------------------------------------------------


def host(draw: st.DrawFn, service: str, namespace: str) -> str:
    spellings = [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        contract.service_host(service, namespace),
        contract.service_host(service, namespace).upper(),
        f"*.{namespace}.svc.cluster.local",
        "echo.example.com",
    ]
    return draw(st.sampled_from(spellings))


def any_host(draw: st.DrawFn) -> str:
    return host(draw, draw(st.sampled_from(NAMES)), draw(st.sampled_from(NAMESPACES)))


def destinations(draw: st.DrawFn, first: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"destination": {"host": first}}]
    if draw(st.booleans()):
        out[0]["destination"]["port"] = {"number": draw(st.sampled_from([80, 8080]))}
    if draw(st.booleans()):  # a split: the other share goes elsewhere (maybe to another origin)
        out[0]["weight"] = 90
        out.append({"destination": {"host": any_host(draw)}, "weight": 10})
    return out


@st.composite
def http_route(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["foreign", "ours", "look-alike", "delegate", "malformed"]))
    if kind in ("foreign", "delegate"):
        route: dict[str, Any] = {"name": draw(st.sampled_from(["default", "api", "service-router--echo-pr1"]))}
        if draw(st.booleans()):
            route["match"] = [{"uri": {"prefix": draw(st.sampled_from(["/api/", "/v2/"]))}}]
        if kind == "delegate":
            route["delegate"] = {"name": "other"}
        route["route"] = destinations(draw, any_host(draw))
        return route
    if kind == "malformed":
        return draw(
            st.sampled_from(
                [
                    {"name": "x", "route": "echo"},
                    {"name": "x", "route": ["echo"]},
                    {"name": "x", "route": [{"destination": "echo"}]},
                    {"name": "default", "route": [{"destination": {"host": "echo", "port": {"number": "eighty"}}}]},
                ]
            )
        )
    # A route of ours as the router writes it, for a clone of an origin: header and value namespaces
    # drawn separately, so headers collide across namespaces; a look-alike loses one proof.
    clone, origin = draw(st.sampled_from(NAMES)), draw(st.sampled_from(ORIGINS))
    header_ns, value_ns = draw(st.sampled_from(NAMESPACES)), draw(st.sampled_from(NAMESPACES))
    name = contract.managed_route_name(clone) + draw(st.sampled_from(["", "--1", "--2"]))
    match: dict[str, Any] = {"headers": {contract.routing_header(origin, header_ns): {"exact": f"{clone}.{value_ns}"}}}
    route = {"name": name, "match": [match], "route": destinations(draw, host(draw, clone, value_ns))}
    if kind == "look-alike":
        mutation = draw(st.sampled_from(["no header", "other destination", "prefix header"]))
        if mutation == "no header":
            route["match"] = [{"uri": {"prefix": "/"}}]
        elif mutation == "other destination":
            route["route"] = destinations(draw, any_host(draw))
        else:
            match["headers"] = {contract.HEADER_PREFIX + "x": {"prefix": "y"}}
    return route


@st.composite
def virtual_service(draw: st.DrawFn) -> dict[str, Any]:
    namespace = draw(st.sampled_from([NS, NS, OTHER]))
    metadata: dict[str, Any] = {"name": draw(st.sampled_from(VS_NAMES)), "namespace": namespace}
    if stamp := draw(st.sampled_from(STAMPS)):
        metadata["creationTimestamp"] = stamp
    annotation = draw(
        st.sampled_from([None, contract.VIRTUAL_SERVICE_OPT_OUT_ANNOTATION, contract.GATEWAY_OPT_IN_ANNOTATION])
    )
    if annotation:
        metadata["annotations"] = {annotation: "true"}
    if draw(st.booleans()):
        metadata["labels"] = {contract.MANAGED_BY_LABEL: contract.SERVICE_ROUTER_MANAGER}
    shape = draw(st.sampled_from(["ok"] * 12 + ["spec", "http", "hosts"]))
    spec: Any = {"hosts": [host(draw, draw(st.sampled_from(NAMES)), namespace) for _ in range(draw(st.integers(0, 2)))]}
    gateways = draw(st.sampled_from([None, None, ["mesh"], ["ingress"], ["ingress"], ["ingress", "mesh"]]))
    if gateways:
        spec["gateways"] = gateways
    spec["http"] = draw(st.lists(http_route(), max_size=4))
    if shape == "spec":
        spec = "oops"
    elif shape == "http":
        spec["http"] = {"name": "x"}
    elif shape == "hosts":
        spec["hosts"] = 7
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": metadata, "spec": spec}


@st.composite
def service(draw: st.DrawFn) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": draw(st.sampled_from(NAMES)),
        "namespace": draw(st.sampled_from([NS, NS, OTHER])),
    }
    if origin := draw(st.sampled_from([None, None, *ORIGINS])):
        metadata["annotations"] = {contract.ORIGIN_SERVICE_ANNOTATION: origin}
    if draw(st.booleans()):  # kept by us: a clone, or one whose annotation was removed since
        metadata["finalizers"] = [contract.ROUTER_FINALIZER]
        if draw(st.booleans()):
            metadata["deletionTimestamp"] = "2026-01-03T00:00:00Z"
    ports = draw(st.sampled_from([[80], [80, 8080], [], ["grpc"]]))
    spec = {"ports": [{"name": "grpc", "port": 9090} if p == "grpc" else {"name": f"p{p}", "port": p} for p in ports]}
    return {"metadata": metadata, "spec": spec}


@st.composite
def gateway_route(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from([HTTP_ROUTE, HTTP_ROUTE, GRPC_ROUTE]))
    namespace = draw(st.sampled_from([NS, NS, OTHER]))
    name = draw(
        st.sampled_from(
            [
                *NAMES,
                "service-router--echo-pr1",
                "service-router--echo-pr1--1",
                "service-router--echo--baseline",
                "service-router--a--baseline-80",
                "service-router--a-b-pr1",
            ]
        )
    )
    labels: dict[str, str] = {}
    role = draw(st.sampled_from([None, DERIVED, BASELINE]))
    if role:
        labels = {
            contract.MANAGED_BY_LABEL: contract.SERVICE_ROUTER_MANAGER,
            ORIGIN_LABEL: draw(st.sampled_from(ORIGINS)),
            ROLE_LABEL: role,
        }
        if role == DERIVED:
            labels[CLONE_LABEL] = draw(st.sampled_from(NAMES))
    refs = []
    for _ in range(draw(st.integers(0, 2))):
        ref: dict[str, Any] = {"name": draw(st.sampled_from(NAMES))}
        if draw(st.booleans()):
            ref["group"] = ""
        ref_kind = draw(st.sampled_from(["Service", "Service", "Gateway", None]))
        if ref_kind:
            ref["kind"] = ref_kind
        if draw(st.booleans()):
            ref["namespace"] = draw(st.sampled_from(NAMESPACES))
        refs.append(ref)
    rule: dict[str, Any] = {"backendRefs": [{"name": draw(st.sampled_from(NAMES)), "port": 80}]}
    if kind == HTTP_ROUTE:
        rule["matches"] = [{"path": {"type": "PathPrefix", "value": "/"}}]
    spec: Any = {"parentRefs": refs, "rules": [rule]}
    if draw(st.integers(0, 15)) == 0:
        spec = draw(st.sampled_from(["oops", {"parentRefs": "echo"}]))
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if stamp := draw(st.sampled_from(STAMPS)):
        metadata["creationTimestamp"] = stamp
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": kind, "metadata": metadata, "spec": spec}


# --- the reconciles, both ways --------------------------------------------------------------


def outcome(step: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", step())
    except Exception as exc:  # the reconciler turns it into a Warning; here it must happen both ways
        return ("raised", type(exc).__name__)


def _names(services: list[dict[str, Any]]) -> list[str]:
    return [objects.name(s) for s in services]


def route_steps(
    key: str, services: ListCache, vss: list[dict[str, Any]], clones: list[dict[str, Any]], release: Any
) -> list[tuple[str, Any]]:
    """The VirtualService reconcile's pure steps for ``key``, as ``RouteReconciler.__call__`` runs them."""
    namespace, origin = key.split("/", 1)
    origin_service = services.get(key)
    live = [s for s in clones if not objects.is_being_deleted(s)]
    steps = [("clones", _names(clones))]
    standing = outcome(lambda: routed_by(vss, origin_service=origin, namespace=namespace))
    steps.append(standing)
    if standing[0] != "ok":
        return steps
    routable = live if origin_service is not None else [s for s in live if objects.name(s) in standing[1]]
    inputs = [
        Clone(objects.name(s), namespace, origin, tuple(int(p["port"]) for p in s["spec"]["ports"])) for s in routable
    ]
    if origin_service is None and not DNS_LABEL.match(origin):
        return [*steps, outcome(lambda: _names(release(origin_service, clones, [])))]  # not planned at all
    plans = outcome(
        lambda: plan_virtual_services(
            origin_service=origin,
            namespace=namespace,
            origin_ports=tuple(int(p["port"]) for p in (origin_service or {"spec": {"ports": []}})["spec"]["ports"]),
            clones=inputs,
            virtual_services=vss,
            origin_exists=origin_service is not None,
        )
    )
    steps.append(plans)
    if plans[0] != "ok":
        return steps
    written = [p for p in plans[1] if p.action != "none"]
    steps.append(outcome(lambda: _names(release(origin_service, clones, written))))
    return steps


def gateway_steps(
    key: str, services: ListCache, routes: list[dict[str, Any]], clones: list[dict[str, Any]], release: Any
) -> list[tuple[str, Any]]:
    namespace, origin = key.split("/", 1)
    origin_service = services.get(key)
    live = [s for s in clones if not objects.is_being_deleted(s)]
    standing = outcome(lambda: gateway_routed(routes, origin_service=origin))
    if standing[0] != "ok":
        return [standing]
    routable = live if origin_service is not None else [s for s in live if objects.name(s) in standing[1]]
    inputs = [Clone(objects.name(s), namespace, origin, tuple(p.port for p in service_ports(s))) for s in routable]
    plan = outcome(
        lambda: plan_gateway_routes(
            origin_service=origin,
            namespace=namespace,
            origin_ports=service_ports(origin_service),
            clones=inputs,
            routes=routes,
            origin_exists=origin_service is not None,
        )
    )
    if plan[0] != "ok":
        return [standing, plan]
    released = outcome(lambda: _names(release(origin_service, clones, standing[1], plan[1].writes)))
    return [standing, plan, released]


def svc(name: str, origin: str | None = None, *, finalizer: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": NS}
    if origin:
        metadata["annotations"] = {contract.ORIGIN_SERVICE_ANNOTATION: origin}
    if finalizer:
        metadata["finalizers"] = [contract.ROUTER_FINALIZER]
    return {"metadata": metadata, "spec": {"ports": [{"name": "http", "port": 80}]}}


def ours(clone: str, origin: str, *also: str) -> dict[str, Any]:
    """A route of ours for ``clone`` of ``origin``; ``also``: hosts it sends a share to as well."""
    return {
        "name": contract.managed_route_name(clone),
        "match": [{"headers": {contract.routing_header(origin, NS): {"exact": contract.routing_value(clone, NS)}}}],
        "route": [
            {"destination": {"host": contract.service_host(clone, NS)}, "weight": 90},
            *({"destination": {"host": h}, "weight": 10} for h in also),
        ],
    }


def vs(name: str, hosts: list[str], http: list[dict[str, Any]], *, gateway: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": NS}
    spec: dict[str, Any] = {"hosts": hosts, "http": http}
    if gateway:
        metadata["annotations"] = {contract.GATEWAY_OPT_IN_ANNOTATION: "true"}
        spec["gateways"] = ["ingress"]
    return {"metadata": metadata, "spec": spec}


def to(service: str) -> dict[str, Any]:
    return {"name": "default", "route": [{"destination": {"host": service}}]}


def derived(name: str, origin: str, clone: str) -> dict[str, Any]:
    labels = {
        contract.MANAGED_BY_LABEL: contract.SERVICE_ROUTER_MANAGER,
        ORIGIN_LABEL: origin,
        ROLE_LABEL: DERIVED,
        CLONE_LABEL: clone,
    }
    spec = {"parentRefs": [{"group": "", "kind": "Service", "name": origin}], "rules": []}
    return {"kind": HTTP_ROUTE, "metadata": {"name": name, "namespace": NS, "labels": labels}, "spec": spec}


@example(  # a: its new VirtualService may not take the name "echo" of one that serves another host
    [svc("echo"), svc("echo-pr1", "echo")], [vs("echo", ["a"], [to("a")])], [], [], [], []
).via("the VirtualService named like the origin")
@example(  # a: a gateway VirtualService reaches it only through a share of echo's route of ours
    [svc("a"), svc("a-pr1", "a")],
    [vs("ingress", ["echo.example.com"], [ours("echo-pr1", "echo", "a")], gateway=True)],
    [],
    [],
    [],
    [],
).via("a destination of a route of ours")
@example(  # a takes its route to "gone" out, but echo's route of ours still reaches it: the finalizer stays
    [svc("a"), svc("echo"), svc("gone", finalizer=True)],
    [vs("a", ["a"], [ours("gone", "a"), to("a")]), vs("shared", ["echo"], [ours("gone", "echo"), to("echo")])],
    [],
    [],
    [],
    [],
).via("a finalizer kept by another origin's VirtualService")
@example(  # the same through derived Gateway API routes: echo's (named unlike the clone) still reaches "gone"
    [svc("a"), svc("echo"), svc("gone", finalizer=True)],
    [],
    [derived("service-router--gone", "a", "gone"), derived("other", "echo", "gone")],
    [],
    [],
    [],
).via("a finalizer kept by another origin's derived route")
@settings(
    max_examples=5000 if PROFILE == "long" else 300,
    derandomize=PROFILE != "long",
    database=None,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(service(), max_size=14),
    st.lists(virtual_service(), max_size=8),
    st.lists(gateway_route(), max_size=6),
    st.lists(st.sampled_from(PLANNED), max_size=4),
    st.lists(st.sampled_from(PLANNED), max_size=3),
    st.lists(st.sampled_from(NAMES), max_size=3),
)
def test_index_reads_plan_what_namespace_lists_plan(
    service_list: list[dict[str, Any]],
    vs_list: list[dict[str, Any]],
    route_list: list[dict[str, Any]],
    planned_first: list[str],
    gateway_planned_first: list[str],
    annotation_removed: list[str],
) -> None:
    """For every key of a randomized world: equal routes planned, Services released, backend chosen."""
    services = ListCache(service_list)
    vs_items = ListCache(vs_list).items
    routes = ListCache(route_list).items
    # Routes of ours as the planner itself writes them: plan some origins and store the result.
    for origin in planned_first:
        current = [v for v in vs_items if objects.namespace(v) == NS]
        clones = [
            Clone(objects.name(s), NS, origin, (80,)) for s in services.list_namespace(NS) if clone_of(s) == origin
        ]
        try:
            plans = plan_virtual_services(
                origin_service=origin, namespace=NS, origin_ports=(80,), clones=clones, virtual_services=current
            )
        except Exception:
            continue
        stored = {objects.object_key(v): v for v in vs_items}
        for plan in plans:
            if plan.action in ("create", "update") and plan.virtual_service is not None:
                stored[objects.object_key(plan.virtual_service)] = plan.virtual_service
        vs_items = list(stored.values())
    for origin in gateway_planned_first:
        current = [r for r in routes if objects.namespace(r) == NS]
        clones = [
            Clone(objects.name(s), NS, origin, (80,)) for s in services.list_namespace(NS) if clone_of(s) == origin
        ]
        try:
            writes = plan_gateway_routes(
                origin_service=origin,
                namespace=NS,
                origin_ports=service_ports({"spec": {"ports": [{"port": 80}]}}),
                clones=clones,
                routes=current,
            ).writes
        except Exception:
            continue
        routes = after_route_writes(routes, writes)
    # Then some Services lose their origin annotation, as a person may do: routes of ours still reach them.
    service_list = [
        {**s, "metadata": {k: v for k, v in s["metadata"].items() if k != "annotations"}}
        if objects.name(s) in annotation_removed and objects.namespace(s) == NS
        else s
        for s in service_list
    ]
    services = ListCache(service_list)
    vs_cache = ListCache(vs_items)
    http_cache = ListCache([r for r in routes if r["kind"] == HTTP_ROUTE])
    grpc_cache = ListCache([r for r in routes if r["kind"] == GRPC_ROUTE])
    reconciler = RouteReconciler(
        client=None,  # type: ignore[arg-type]
        services=services,
        virtual_services=vs_cache,
        virtual_service_resource=VS,
        record_event=lambda *_a, **_k: None,
        metrics=METRICS,
    )
    gateway = GatewayRouteReconciler(
        client=None,  # type: ignore[arg-type]
        services=services,
        routes={HTTP_ROUTE: (HTTP, http_cache), GRPC_ROUTE: (GRPC, grpc_cache)},
        record_event=lambda *_a, **_k: None,
        metrics=METRICS,
        virtual_services=vs_cache,
    )
    names = {objects.name(s) for s in service_list} | set(ORIGINS) | {objects.name(v) for v in vs_items}
    world = World(services, vs_cache, (http_cache, grpc_cache), reconciler, gateway)
    for namespace in NAMESPACES:
        for origin in sorted(names):
            check_key(world, f"{namespace}/{origin}")


@dataclass
class World:
    services: ListCache
    virtual_services: ListCache
    route_caches: tuple[ListCache, ListCache]
    reconciler: RouteReconciler
    gateway: GatewayRouteReconciler


def check_key(world: World, key: str) -> None:
    """One key's reconcile steps from index reads and from whole-namespace lists."""
    namespace, origin = key.split("/", 1)
    services, reconciler, gateway = world.services, world.reconciler, world.gateway
    all_services = services.list_namespace(namespace)
    all_vss = world.virtual_services.list_namespace(namespace)
    all_routes = [{**r, "kind": r["kind"]} for c in world.route_caches for r in c.list_namespace(namespace)]
    indexed_vss = reconciler.virtual_services_of(key)
    indexed_clones = services.by_index(CLONE_OF_INDEX, key)
    all_clones = [s for s in all_services if clone_of(s) == origin]

    def old_release(origin_service: Any, clones: Any, written: Any) -> Any:
        standing = after_writes(all_vss, written)
        return to_release(all_services, origin_service=origin, namespace=namespace, observed=all_vss, standing=standing)

    def new_release(origin_service: Any, clones: Any, written: Any) -> Any:
        known = [*clones, *([origin_service] if origin_service is not None else [])]
        found, observed = reconciler.release_inputs(
            namespace=namespace, origin_service=origin, known=known, virtual_services=indexed_vss
        )
        standing = after_writes(observed, written)
        return to_release(found, origin_service=origin, namespace=namespace, observed=observed, standing=standing)

    assert route_steps(key, services, indexed_vss, indexed_clones, new_release) == route_steps(
        key, services, all_vss, all_clones, old_release
    ), key

    def old_gateway_release(origin_service: Any, clones: Any, standing: Any, writes: Any) -> Any:
        still = gateway_routed(after_route_writes(all_routes, writes)) | routed_services(all_vss, namespace=namespace)
        answerable = [
            s
            for s in all_services
            if objects.has_finalizer(s, contract.ROUTER_FINALIZER)
            and not is_live_clone(s)
            and (clone_of(s) == origin or objects.name(s) == origin or objects.name(s) in standing)
        ]
        return [s for s in answerable if objects.name(s) not in still]

    live_keys = [objects.object_key(s) for s in indexed_clones if not objects.is_being_deleted(s)]
    indexed_routes = gateway.observed(namespace, [key, *live_keys])

    def new_gateway_release(origin_service: Any, clones: Any, standing: Any, writes: Any) -> Any:
        return gateway.releasable(
            namespace=namespace,
            origin_service=origin,
            known=[*clones, *([origin_service] if origin_service is not None else [])],
            standing=standing,
            routes=indexed_routes,
            writes=writes,
        )

    assert gateway_steps(key, services, indexed_routes, indexed_clones, new_gateway_release) == gateway_steps(
        key, services, all_routes, all_clones, old_gateway_release
    ), key
    apis = RoutingApis(virtual_services=VS, http_routes=HTTP, grpc_routes=GRPC)
    dispatch_routes = gateway.observed(namespace, [key])
    for mode in ROUTING_APIS:
        by_index = outcome(
            lambda m=mode: uses_gateway_api(m, apis, dispatch_routes, origin_service=origin, namespace=namespace)
        )
        by_list = outcome(
            lambda m=mode: uses_gateway_api(m, apis, all_routes, origin_service=origin, namespace=namespace)
        )
        assert by_index == by_list, (key, mode)


def test_a_virtual_service_is_found_under_every_spelling_of_its_host() -> None:
    """``svc``, ``svc.ns``, ``svc.ns.svc`` and the FQDN (any case) all index under ``ns/svc``."""
    for spelling in ("echo", "echo.c", "echo.c.svc", "echo.c.svc.cluster.local", "ECHO.C.SVC.CLUSTER.LOCAL."):
        vs = {"metadata": {"name": "x", "namespace": NS}, "spec": {"hosts": [spelling]}}
        assert f"{NS}/echo" in virtual_service_index(vs), spelling


def test_an_unreadable_virtual_service_is_read_by_every_origin_of_its_namespace() -> None:
    vs = {"metadata": {"name": "x", "namespace": NS}, "spec": "oops"}
    assert virtual_service_index(vs) == [f"{NS}/*", f"{NS}/x"]
