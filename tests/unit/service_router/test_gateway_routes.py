"""Derived Gateway API routes: one per clone, copies of the origin's rules with the header added.

Every route planned here is validated against the Gateway API CRDs from ``../shared`` and, by the
evaluator, routes header traffic to the clone and everything else to the origin.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from gateway_api_schema import gateway_api_errors

from controller_common import contract
from service_router.cloning import Clone
from service_router.gateway_evaluate import attached, route_http_request, select_grpc_rule, select_http_rule
from service_router.gateway_routes import (
    CLONE_LABEL,
    MAX_HEADERS_PER_MATCH,
    MAX_MATCHES_PER_ROUTE,
    MAX_MATCHES_PER_RULE,
    MAX_RULES,
    ORIGIN_LABEL,
    GatewayPlan,
    ServicePort,
    after_route_writes,
    plan_gateway_routes,
    service_ports,
)

NS = "shop"
ORIGIN = "echo"
HEADER = contract.routing_header(ORIGIN, NS)
HTTP = (ServicePort(80, "http"),)
PARENT = {"group": "", "kind": "Service", "name": ORIGIN, "port": 80}


def clone(name: str = "echo-pr1", ports: tuple[int, ...] = (80,)) -> Clone:
    return Clone(service=name, namespace=NS, origin_service=ORIGIN, ports=ports)


def http_route(name: str = "echo", rules: list[dict[str, Any]] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": NS, "creationTimestamp": "2024-01-01T00:00:00Z", **meta},
        "spec": {
            "parentRefs": [copy.deepcopy(PARENT)],
            "rules": rules
            if rules is not None
            else [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"set": [{"name": "x-env", "value": "prod"}]},
                        }
                    ],
                    "timeouts": {"request": "5s"},
                    "backendRefs": [{"group": "", "kind": "Service", "name": ORIGIN, "port": 80, "weight": 1}],
                },
                {"backendRefs": [{"name": ORIGIN, "port": 80}]},
            ],
        },
    }


def plan(routes: list[dict[str, Any]], clones: list[Clone], ports: tuple[ServicePort, ...] = HTTP) -> GatewayPlan:
    return plan_gateway_routes(origin_service=ORIGIN, namespace=NS, origin_ports=ports, clones=clones, routes=routes)


def applied(routes: list[dict[str, Any]], p: GatewayPlan) -> list[dict[str, Any]]:
    return after_route_writes(routes, p.writes)


def created(p: GatewayPlan) -> dict[str, dict[str, Any]]:
    return {w.route["metadata"]["name"]: w.route for w in p.writes if w.action == "create"}


def test_a_clone_gets_one_httproute_with_every_origin_rule_copied_and_the_header_added() -> None:
    origin = http_route()
    p = plan([origin], [clone()])
    routes = created(p)
    assert list(routes) == ["service-router--echo-pr1"]
    derived = routes["service-router--echo-pr1"]
    assert derived["metadata"]["labels"] == {
        contract.MANAGED_BY_LABEL: "service-router",
        ORIGIN_LABEL: ORIGIN,
        CLONE_LABEL: "echo-pr1",
        "service-router.mercari.com/role": "derived",
    }
    assert derived["spec"]["parentRefs"] == [PARENT]
    first, second = derived["spec"]["rules"]
    header = {"type": "Exact", "name": HEADER, "value": f"echo-pr1.{NS}"}
    assert first["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}, "headers": [header]}]
    assert first["filters"] == origin["spec"]["rules"][0]["filters"]
    assert first["timeouts"] == {"request": "5s"}
    assert first["backendRefs"] == [{"group": "", "kind": "Service", "name": "echo-pr1", "port": 80, "weight": 1}]
    assert second["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}, "headers": [header]}]
    assert p.routed_clones == ("echo-pr1",)


def test_the_origin_routes_are_never_written_and_planning_again_writes_nothing() -> None:
    origin = http_route()
    before = copy.deepcopy(origin)
    p = plan([origin], [clone(), clone("echo-pr2")])
    assert origin == before
    assert all(w.route["metadata"]["name"].startswith("service-router--") for w in p.writes)
    assert plan(applied([origin], p), [clone(), clone("echo-pr2")]).writes == ()


@pytest.mark.parametrize(
    ("headers", "path", "expected", "rule_has_filters"),
    [
        ({HEADER: f"echo-pr1.{NS}"}, "/api/x", "echo-pr1", True),
        ({HEADER: f"echo-pr1.{NS}"}, "/other", "echo-pr1", False),
        ({}, "/api/x", ORIGIN, True),
        ({HEADER: f"echo-pr9.{NS}"}, "/api/x", ORIGIN, True),
        ({"Service-Router-Echo-Shop": f"echo-pr2.{NS}"}, "/api", "echo-pr2", True),
    ],
    ids=["header-api", "header-other-path", "no-header", "stale-value", "second-clone-any-case"],
)
def test_by_the_evaluator_header_traffic_reaches_the_clone_with_the_origin_rule(
    headers: dict[str, str], path: str, expected: str, rule_has_filters: bool
) -> None:
    routes = applied([http_route()], plan([http_route()], [clone(), clone("echo-pr2")]))
    selected = select_http_rule(attached(routes, service=ORIGIN, namespace=NS, port=80), path=path, headers=headers)
    assert selected is not None and selected.backend == expected
    assert bool(selected.filters) is rule_has_filters
    assert route_http_request(routes, service=ORIGIN, namespace=NS, path=path, headers=headers) == expected


def test_an_origin_without_routes_gets_a_baseline_route_that_goes_with_the_last_clone() -> None:
    p = plan([], [clone()])
    routes = created(p)
    assert sorted(routes) == ["service-router--echo--baseline", "service-router--echo-pr1"]
    baseline = routes["service-router--echo--baseline"]
    assert baseline["spec"]["rules"][0]["backendRefs"][0]["name"] == ORIGIN
    standing = applied([], p)
    assert route_http_request(standing, service=ORIGIN, namespace=NS, headers={}) == ORIGIN
    assert route_http_request(standing, service=ORIGIN, namespace=NS, headers={HEADER: f"echo-pr1.{NS}"}) == "echo-pr1"
    gone = plan(standing, [])
    assert sorted((w.action, w.route["metadata"]["name"]) for w in gone.writes) == [
        ("delete", "service-router--echo--baseline"),
        ("delete", "service-router--echo-pr1"),
    ]


def test_the_baseline_goes_as_soon_as_the_origin_has_a_route_of_its_own() -> None:
    standing = applied([], plan([], [clone()]))
    p = plan([*standing, http_route()], [clone()])
    actions = {(w.action, w.route["metadata"]["name"]) for w in p.writes}
    assert ("delete", "service-router--echo--baseline") in actions
    assert ("update", "service-router--echo-pr1") in actions


def test_a_grpc_origin_gets_grpcroutes() -> None:
    ports = (ServicePort(9090, "rpc", "kubernetes.io/h2c"),)
    p = plan([], [clone(ports=(9090,))], ports)
    routes = created(p)
    assert {r["kind"] for r in routes.values()} == {"GRPCRoute"}
    standing = applied([], p)
    derived = [r for r in standing if r["metadata"]["name"] == "service-router--echo-pr1"]
    selected = select_grpc_rule(derived, service="echo.Echo", method="Say", headers={HEADER: f"echo-pr1.{NS}"})
    assert selected is not None and selected.backend == "echo-pr1"
    assert select_grpc_rule(derived, service="echo.Echo", method="Say", headers={}) is None


def test_an_origin_grpcroute_is_derived_as_a_grpcroute() -> None:
    grpc = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GRPCRoute",
        "metadata": {"name": "echo-grpc", "namespace": NS},
        "spec": {
            "parentRefs": [PARENT],
            "rules": [
                {
                    "matches": [{"method": {"type": "Exact", "service": "echo.Echo", "method": "Say"}}],
                    "backendRefs": [{"name": ORIGIN, "port": 80}],
                }
            ],
        },
    }
    (route,) = created(plan([grpc], [clone()])).values()
    assert route["kind"] == "GRPCRoute"
    assert route["spec"]["rules"][0]["matches"][0]["method"] == {
        "type": "Exact",
        "service": "echo.Echo",
        "method": "Say",
    }


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        ({"port": 80, "name": "http"}, False),
        ({"port": 9090, "name": "grpc"}, True),
        ({"port": 9090, "name": "grpc-api"}, True),
        ({"port": 9090, "name": "api", "appProtocol": "grpc"}, True),
        ({"port": 9090, "appProtocol": "kubernetes.io/h2c"}, True),
        ({"port": 8080, "name": "grpcweb"}, False),
    ],
    ids=["http", "grpc-name", "grpc-prefix", "appProtocol-grpc", "h2c", "not-a-grpc-name"],
)
def test_grpc_ports_are_told_by_app_protocol_or_name(port: dict[str, Any], expected: bool) -> None:
    (parsed,) = service_ports({"spec": {"ports": [port]}})
    assert parsed.is_grpc is expected


def test_a_clone_without_the_origin_port_gets_no_rule_and_a_warning() -> None:
    p = plan([http_route()], [clone(ports=(8080,))])
    assert created(p) == {}
    assert p.routed_clones == ()
    assert any("clone's port" in w for w in p.warnings)


def test_rules_to_other_services_are_not_copied() -> None:
    other = {"backendRefs": [{"name": "legacy", "port": 80}], "matches": [{"path": {"type": "Exact", "value": "/old"}}]}
    (route,) = created(
        plan([http_route(rules=[other, {"backendRefs": [{"name": ORIGIN, "port": 80}]}])], [clone()])
    ).values()
    assert len(route["spec"]["rules"]) == 1


@pytest.mark.parametrize(
    ("matches_per_rule", "sizes"),
    [(1, [16, 5]), (10, [12, 9]), (64, [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1])],
    ids=["16-rules", "128-matches", "64-per-rule"],
)
def test_many_rules_are_split_across_routes_within_the_crd_limits(matches_per_rule: int, sizes: list[int]) -> None:
    rules = [
        {
            "matches": [{"path": {"type": "Exact", "value": f"/r{i}/{j}"}} for j in range(matches_per_rule)],
            "backendRefs": [{"name": ORIGIN, "port": 80}],
        }
        for i in range(16)
    ]
    origins = [http_route("a", rules=rules), http_route("b", rules=rules[:5])]
    routes = created(plan(origins, [clone()]))
    names = ["service-router--echo-pr1", *(f"service-router--echo-pr1--{i}" for i in range(1, len(sizes)))]
    assert list(routes) == names
    assert [len(r["spec"]["rules"]) for r in routes.values()] == sizes
    for route in routes.values():
        rules_out = route["spec"]["rules"]
        assert len(rules_out) <= MAX_RULES
        assert sum(len(r["matches"]) for r in rules_out) <= MAX_MATCHES_PER_ROUTE
        assert all(len(r["matches"]) <= MAX_MATCHES_PER_RULE for r in rules_out)


def test_a_match_with_full_headers_is_left_out_with_a_warning() -> None:
    full = [{"type": "Exact", "name": f"x-h{i}", "value": "1"} for i in range(MAX_HEADERS_PER_MATCH)]
    rule = {
        "matches": [
            {"path": {"type": "PathPrefix", "value": "/"}, "headers": full},
            {"path": {"type": "Exact", "value": "/a"}},
        ],
        "backendRefs": [{"name": ORIGIN, "port": 80}],
    }
    p = plan([http_route(rules=[rule])], [clone()])
    (route,) = created(p).values()
    assert route["spec"]["rules"][0]["matches"] == [
        {
            "path": {"type": "Exact", "value": "/a"},
            "headers": [{"type": "Exact", "name": HEADER, "value": f"echo-pr1.{NS}"}],
        }
    ]
    assert any("16 header matches" in w for w in p.warnings)


def test_a_foreign_route_with_our_name_is_never_touched() -> None:
    squatter = http_route("service-router--echo-pr1", rules=[{"backendRefs": [{"name": "x", "port": 80}]}])
    squatter["spec"]["parentRefs"] = [{"group": "", "kind": "Service", "name": "other", "port": 80}]
    p = plan([http_route(), squatter], [clone()])
    assert list(created(p)) == ["service-router--echo-pr1--1"]
    assert all(w.route is not squatter and w.route["metadata"]["name"] != "service-router--echo-pr1" for w in p.writes)
    assert plan([http_route(), squatter], []).writes == ()


def test_a_drifted_derived_route_is_put_back_and_a_stale_one_deleted() -> None:
    standing = applied([http_route()], plan([http_route()], [clone(), clone("echo-pr2")]))
    for route in standing:
        if route["metadata"]["name"] == "service-router--echo-pr1":
            route["metadata"]["resourceVersion"] = "7"
            route["spec"]["rules"] = []
    p = plan(standing, [clone()])
    assert sorted((w.action, w.route["metadata"]["name"]) for w in p.writes) == [
        ("delete", "service-router--echo-pr2"),
        ("update", "service-router--echo-pr1"),
    ]
    update = next(w for w in p.writes if w.action == "update")
    assert update.route["metadata"]["resourceVersion"] == "7"


def test_a_missing_origin_adds_nothing_but_keeps_standing_routes() -> None:
    standing = applied([], plan([], [clone()]))
    p = plan_gateway_routes(
        origin_service=ORIGIN,
        namespace=NS,
        origin_ports=(),
        clones=[clone(), clone("echo-pr2")],
        routes=standing,
        origin_exists=False,
    )
    assert p.writes == ()
    assert (
        plan_gateway_routes(
            origin_service=ORIGIN,
            namespace=NS,
            origin_ports=(),
            clones=[clone("echo-pr2")],
            routes=[],
            origin_exists=False,
        ).writes
        == ()
    )


def test_routes_attached_to_another_service_are_not_the_origins() -> None:
    other = http_route()
    other["spec"]["parentRefs"] = [{"group": "", "kind": "Service", "name": "other", "port": 80}]
    gateway_bound = http_route("ingress")
    gateway_bound["spec"]["parentRefs"] = [{"name": "public-gateway"}]
    names = sorted(created(plan([other, gateway_bound], [clone()])))
    assert names == ["service-router--echo--baseline", "service-router--echo-pr1"]


def test_a_multi_port_origin_gets_a_baseline_per_port() -> None:
    ports = (ServicePort(80, "http"), ServicePort(9090, "grpc"))
    routes = created(plan([], [clone(ports=(80, 9090))], ports))
    assert {(n, r["kind"]) for n, r in routes.items()} == {
        ("service-router--echo--baseline-80", "HTTPRoute"),
        ("service-router--echo--baseline-9090", "GRPCRoute"),
        ("service-router--echo-pr1", "HTTPRoute"),
        ("service-router--echo-pr1--1", "GRPCRoute"),
    }


SCENARIOS = {
    "origin-route": ([http_route()], HTTP),
    "baseline": ([], HTTP),
    "grpc-baseline": ([], (ServicePort(80, "grpc"),)),
    "multi-port": ([], (ServicePort(80, "http"), ServicePort(81, "grpc"))),
    "split": (
        [
            http_route(
                rules=[
                    {
                        "matches": [{"path": {"type": "Exact", "value": f"/{i}"}}],
                        "backendRefs": [{"name": ORIGIN, "port": 80}],
                    }
                    for i in range(16)
                ]
            ),
            http_route("b"),
        ],
        HTTP,
    ),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_planned_route_validates_against_the_gateway_api_crd(scenario: str, shared_dir: Path) -> None:
    routes, ports = SCENARIOS[scenario]
    p = plan(
        routes,
        [clone(ports=tuple(x.port for x in ports)), clone("echo-pr2", ports=tuple(x.port for x in ports))],
        ports,
    )
    assert p.writes
    for write in p.writes:
        assert gateway_api_errors(write.route, shared_dir) == [], write.route["metadata"]["name"]


def test_the_schema_check_rejects_what_the_crd_rejects(shared_dir: Path) -> None:
    """The validation above can fail: a header match type the CRD does not know, 17 rules."""
    bad = http_route(rules=[{"matches": [{"headers": [{"type": "Prefix", "name": "x", "value": "y"}]}]}])
    assert gateway_api_errors(bad, shared_dir) != []
    too_many = http_route(rules=[{"backendRefs": [{"name": ORIGIN, "port": 80}]}] * (MAX_RULES + 1))
    assert gateway_api_errors(too_many, shared_dir) != []
