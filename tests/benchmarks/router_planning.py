"""Router planning throughput: ``plan_virtual_services`` and ``evaluate`` on one origin's VirtualService.

The VirtualService has R foreign routes (half forward to the origin with their own matches,
rewrites, timeouts and retries, so each is copied once per clone; the rest go elsewhere) and the
router plans C clones into it. Timed: the first plan (no managed routes yet: an update) and the
steady-state plan (the planned VirtualService fed back, as the informer would see it after the
write: the action is computed and printed, expected "none"). ``evaluate`` — the pure Istio
matching used by the CLI and the tests — is timed on the planned VirtualService for a request
routed to the last clone and for a request without the header (the common case, which passes
every managed route before reaching the origin's own).
"""

from __future__ import annotations

import copy
from typing import Any

import structlog

from benchmarks.measure import Table, repeat
from controller_common import contract
from service_router.evaluate import evaluate
from service_router.routes import Clone, plan_virtual_services

NAME = "router-planning"
TITLE = "2. Router planning throughput (pure core, one origin's VirtualService)"
NAMESPACE = "default"
ORIGIN = "checkout"
HOST = f"{ORIGIN}.{NAMESPACE}.svc.cluster.local"
FULL_SIZES = {"foreign_routes": (2, 20), "clones": (1, 10, 100)}
QUICK_SIZES = {"foreign_routes": (2,), "clones": (1, 3)}


def foreign_routes(count: int) -> list[dict[str, Any]]:
    """``count`` routes, the last the origin's default route."""
    routes: list[dict[str, Any]] = []
    for i in range(count - 1):
        if i % 2 == 0:  # to the origin: cloned per clone
            routes.append(
                {
                    "name": f"api-v{i}",
                    "match": [{"uri": {"prefix": f"/api/v{i}/"}}, {"uri": {"prefix": f"/internal/v{i}/"}}],
                    "rewrite": {"uri": "/"},
                    "timeout": "5s",
                    "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,reset"},
                    "route": [{"destination": {"host": HOST, "port": {"number": 80}}}],
                }
            )
        else:  # elsewhere: kept as is
            routes.append(
                {
                    "name": f"legacy-{i}",
                    "match": [{"uri": {"prefix": f"/legacy/{i}/"}}],
                    "route": [{"destination": {"host": f"legacy-{i}.{NAMESPACE}.svc.cluster.local"}}],
                }
            )
    routes.append({"name": "default", "route": [{"destination": {"host": HOST, "port": {"number": 80}}}]})
    return routes


def virtual_service(routes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {
            "name": ORIGIN,
            "namespace": NAMESPACE,
            "uid": "6c1d2a4e-0000-4000-8000-000000000001",
            "resourceVersion": "4242",
            "generation": 7,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"hosts": [HOST], "http": routes},
    }


def clones(count: int) -> list[Clone]:
    return [
        Clone(service=contract.clone_name(ORIGIN, n), namespace=NAMESPACE, origin_service=ORIGIN, ports=(80,))
        for n in range(1, count + 1)
    ]


def _plan(vs: dict[str, Any], wanted: list[Clone]) -> Any:
    return plan_virtual_services(
        origin_service=ORIGIN, namespace=NAMESPACE, origin_ports=(80,), clones=wanted, virtual_services=[vs]
    )


def run(*, quick: bool = False) -> list[Table]:
    sizes = QUICK_SIZES if quick else FULL_SIZES
    runs = {"min_runs": 5, "max_runs": 5000, "min_seconds": 0.1 if quick else 0.3}
    table = Table(
        TITLE,
        [
            "foreign routes",
            "clones",
            "routes after",
            "1st plan ms p50",
            "1st plan ms p95",
            "steady plan ms p50",
            "steady plan ms p95",
            "steady action",
            "evaluate req/s (to last clone)",
            "evaluate req/s (no header)",
        ],
    )
    header = contract.routing_header(ORIGIN, NAMESPACE)
    for r in sizes["foreign_routes"]:
        for c in sizes["clones"]:
            observed = virtual_service(foreign_routes(r))
            wanted = clones(c)
            first = _plan(observed, wanted)[0]
            assert first.virtual_service is not None
            written = copy.deepcopy(first.virtual_service)
            written["metadata"]["resourceVersion"] = "4243"  # the server's answer to the update
            written["metadata"]["generation"] = 8
            steady_action = _plan(written, wanted)[0].action
            first_t = repeat(lambda o=observed, w=wanted: _plan(o, w), **runs)
            steady_t = repeat(lambda o=written, w=wanted: _plan(o, w), **runs)
            last = f"{wanted[-1].service}.{NAMESPACE}"
            routed = evaluate([written], host=HOST, namespace=NAMESPACE, path="/api/v0/orders", headers={header: last})
            assert routed is not None and routed.host.startswith(wanted[-1].service), routed
            to_clone = repeat(
                lambda v=written, h={header: last}: evaluate([v], host=HOST, namespace=NAMESPACE, path="/", headers=h),
                **runs,
            )
            plain = repeat(
                lambda v=written: evaluate([v], host=HOST, namespace=NAMESPACE, path="/", headers={}),
                **runs,
            )
            table.add(
                r,
                c,
                len(written["spec"]["http"]),
                first_t.median * 1e3,
                first_t.p95 * 1e3,
                steady_t.median * 1e3,
                steady_t.p95 * 1e3,
                steady_action,
                to_clone.per_second,
                plain.per_second,
            )
    table.notes += [
        "foreign routes: the origin's default route, and half of the others forward to the origin too"
        " (copied per clone, with their matches, rewrite, timeout, retries), half elsewhere.",
        "routes after = http routes in the planned VirtualService.",
        "1st plan: no managed routes yet (an update); steady plan: the planned VirtualService fed back"
        " (steady action computed, not assumed).",
        "evaluate: the request path '/' (matches only the default route and its copies); req/s = 1 / median.",
    ]
    return [table, run_reconcile(quick=quick)]


# --- one origin's whole reconcile in a crowded namespace ------------------------------------

RECONCILE_TITLE = "2b. Router reconcile of one origin in a namespace of N origins (steady state, no writes)"
FULL_CROWDS = (10, 100, 1000)
QUICK_CROWDS = (10,)


class _ListingClient:
    """What the informers list at start, and nothing else: a steady-state reconcile writes nothing."""

    def __init__(self, items: dict[str, list[dict[str, Any]]]) -> None:
        self.items = items

    def list(self, resource: Any, namespace: str | None = None, **_: Any) -> tuple[list[dict[str, Any]], str]:
        return copy.deepcopy(self.items[resource.plural]), "1"

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a steady-state reconcile called the server: {name}")


def crowded_namespace(origins: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``origins`` origin Services, one clone each, and each origin's VirtualService as the router
    left it (two foreign routes, one copied for the clone): the Services and the VirtualServices."""
    services: list[dict[str, Any]] = []
    virtual_services: list[dict[str, Any]] = []
    for i in range(origins):
        origin = f"svc-{i:04d}"
        clone = contract.clone_name(origin, 1)
        host = contract.service_host(origin, NAMESPACE)
        ports = {"ports": [{"name": "http", "port": 80}]}
        services.append({"metadata": {"name": origin, "namespace": NAMESPACE, "resourceVersion": "1"}, "spec": ports})
        services.append(
            {
                "metadata": {
                    "name": clone,
                    "namespace": NAMESPACE,
                    "resourceVersion": "1",
                    "annotations": {contract.ORIGIN_SERVICE_ANNOTATION: origin},
                    "finalizers": [contract.ROUTER_FINALIZER],
                },
                "spec": ports,
            }
        )
        observed = {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": origin, "namespace": NAMESPACE, "resourceVersion": "1"},
            "spec": {
                "hosts": [host],
                "http": [
                    {
                        "name": "legacy",
                        "match": [{"uri": {"prefix": "/legacy/"}}],
                        "route": [{"destination": {"host": "legacy"}}],
                    },
                    {
                        "name": "default",
                        "timeout": "5s",
                        "route": [{"destination": {"host": host, "port": {"number": 80}}}],
                    },
                ],
            },
        }
        wanted = [Clone(service=clone, namespace=NAMESPACE, origin_service=origin, ports=(80,))]
        plan = plan_virtual_services(
            origin_service=origin, namespace=NAMESPACE, origin_ports=(80,), clones=wanted, virtual_services=[observed]
        )[0]
        virtual_services.append(plan.virtual_service or observed)
    return services, virtual_services


def _reconciler(services: list[dict[str, Any]], virtual_services: list[dict[str, Any]]) -> Any:
    """The router's reconciler over real informers, filled by one list and indexed as ``__main__`` does."""
    from controller_common.informer import Informer
    from controller_common.kube import SERVICES
    from controller_common.metrics import Metrics
    from service_router.istio import virtual_service_resource
    from service_router.metrics import RouterMetrics
    from service_router.reconcile import RouteReconciler

    resource = virtual_service_resource("v1")
    client = _ListingClient({"services": services, "virtualservices": virtual_services})
    library = Metrics("bench_router_reconcile")
    caches = {}
    for cached in (SERVICES, resource):
        informer = Informer(client, cached, name=cached.plural, metrics=library)  # type: ignore[arg-type]
        _register_indexes(informer, cached.plural)
        with structlog.testing.capture_logs():
            informer._relist()  # the informer's own start, without its watch thread
        caches[cached.plural] = informer
    return RouteReconciler(
        client=client,  # type: ignore[arg-type]
        services=caches["services"],
        virtual_services=caches["virtualservices"],
        virtual_service_resource=resource,
        record_event=lambda *_a, **_k: None,
        metrics=RouterMetrics.create(library),
    )


def _register_indexes(informer: Any, plural: str) -> None:
    from service_router.indexes import CLONE_OF_INDEX, INDEXES, VIRTUAL_SERVICE_INDEX

    name = CLONE_OF_INDEX if plural == "services" else VIRTUAL_SERVICE_INDEX
    informer.add_index(name, INDEXES[name])


def run_reconcile(*, quick: bool = False) -> Table:
    table = Table(
        RECONCILE_TITLE,
        ["origins in namespace", "clones", "VirtualServices", "µs per reconcile p50", "µs per reconcile p95"],
    )
    runs = {"min_runs": 5, "max_runs": 2000, "min_seconds": 0.1 if quick else 0.5}
    for origins in QUICK_CROWDS if quick else FULL_CROWDS:
        services, virtual_services = crowded_namespace(origins)
        reconcile = _reconciler(services, virtual_services)
        key = f"{NAMESPACE}/svc-{origins // 2:04d}"
        with structlog.testing.capture_logs():
            reconcile(key)  # the first one reports Routed; the timed ones are the steady state
            timing = repeat(lambda r=reconcile, k=key: r(k), **runs)
        table.add(origins, origins, len(virtual_services), timing.median * 1e6, timing.p95 * 1e6)
    table.notes += [
        "one origin's RouteReconciler call, informers filled as at start (real Informer, indexes as __main__"
        " registers them); every origin has one clone, already routed: the reconcile plans 'none' and writes nothing.",
        "before the index reads (2026-12, issue 10) every reconcile listed and scanned the whole namespace.",
    ]
    return table
