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
    return [table]
