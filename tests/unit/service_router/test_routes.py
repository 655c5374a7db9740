"""Route planning: which VirtualService the router edits, and the route list it writes."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller_common.contract import (
    GATEWAY_OPT_IN_ANNOTATION,
    MANAGED_BY_LABEL,
    SERVICE_ROUTER_MANAGER,
    VIRTUAL_SERVICE_OPT_OUT_ANNOTATION,
)
from istio_schema import istio_errors
from service_router.routes import (
    Clone,
    VirtualServicePlan,
    desired_http_routes,
    plan_gateway_virtual_services,
    plan_virtual_service,
    plan_virtual_services,
    route_owner,
    select_virtual_service,
)

NS = "default"
ORIGIN = "echo"
ORIGIN_FQDN = "echo.default.svc.cluster.local"
HEADER = "service-router-echo-default"


def clone(n: int, ports: tuple[int, ...] = ()) -> Clone:
    return Clone(service=f"echo-pr{n}", namespace=NS, origin_service=ORIGIN, ports=ports)


def to(host: str, port: int | None = None, subset: str | None = None, weight: int | None = None) -> dict:
    destination: dict[str, Any] = {"host": host}
    if port is not None:
        destination["port"] = {"number": port}
    if subset is not None:
        destination["subset"] = subset
    item: dict[str, Any] = {"destination": destination}
    if weight is not None:
        item["weight"] = weight
    return item


def vs(
    name: str = "echo",
    *,
    hosts: tuple[str, ...] = ("echo",),
    http: list[dict] | None = None,
    namespace: str = NS,
    gateways: list[str] | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    created: str = "2026-01-01T00:00:00Z",
    extra_spec: dict | None = None,
) -> dict:
    spec: dict[str, Any] = {"hosts": list(hosts)}
    if gateways is not None:
        spec["gateways"] = gateways
    if http is not None:
        spec["http"] = http
    spec.update(extra_spec or {})
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "resourceVersion": "42",
        "creationTimestamp": created,
    }
    if annotations:
        metadata["annotations"] = annotations
    if labels:
        metadata["labels"] = labels
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": metadata,
        "spec": spec,
    }


DEFAULT_ROUTE = {"name": "default", "route": [to("echo", 8080)]}
API_ROUTE = {
    "name": "api",
    "match": [{"uri": {"prefix": "/api/"}}, {"uri": {"regex": "/v[0-9]+/.*"}, "method": {"exact": "POST"}}],
    "rewrite": {"uri": "/"},
    "timeout": "3s",
    "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx"},
    "fault": {"delay": {"fixedDelay": "1s", "percentage": {"value": 0.1}}},
    "headers": {"request": {"set": {"x-api": "1"}}},
    "route": [to("echo", 8080)],
}
WEIGHTED_ROUTE = {
    "name": "canary",
    "match": [{"headers": {"x-canary": {"exact": "1"}}}],
    "route": [
        to("echo.default.svc.cluster.local", 8080, "v1", 70),
        to("echo", 8080, "v2", 20),
        to("legacy", 8080, weight=10),
    ],
}
BILLING_ROUTE = {"name": "billing", "match": [{"uri": {"prefix": "/billing"}}], "route": [to("billing")]}
REDIRECT_ROUTE = {"name": "old", "match": [{"uri": {"exact": "/old"}}], "redirect": {"uri": "/new"}}
GATEWAYS = ["istio-system/ingress"]
OPT_OUT = {VIRTUAL_SERVICE_OPT_OUT_ANNOTATION: "true"}
OPT_IN = {GATEWAY_OPT_IN_ANNOTATION: "true"}
OURS = {MANAGED_BY_LABEL: SERVICE_ROUTER_MANAGER}


def managed(name: str, route: dict, n: int, port: int | None = 8080) -> dict:
    """What the router writes for clone ``n`` of ``route`` (single-destination routes)."""
    copied = copy.deepcopy(route)
    copied["name"] = name
    value = {HEADER: {"exact": f"echo-pr{n}.default"}}
    copied["match"] = [{**m, "headers": {**m.get("headers", {}), **value}} for m in route.get("match", [])] or [
        {"headers": value}
    ]
    copied["route"] = [to(f"echo-pr{n}.default.svc.cluster.local", port)]
    return copied


@dataclass(frozen=True)
class Case:
    id: str
    virtual_services: list[dict]
    clones: list[Clone]
    action: str
    names: list[str] | None  # route names of the resulting spec.http, in order (None: no object)
    origin_ports: tuple[int, ...] = (8080,)
    warnings: tuple[str, ...] = ()  # substrings expected among the warnings
    picked: str | None = None  # name of the VirtualService the plan acts on
    impostors: tuple[str, ...] = ()  # routes named like ours that are not (foreign, kept as they are)
    extra: dict = field(default_factory=dict)


CASES = [
    Case("no-vs-no-clone", [], [], "none", None),
    Case(
        "no-vs-one-clone-creates",
        [],
        [clone(1)],
        "create",
        ["service-router--echo-pr1", "default"],
        picked="echo",
    ),
    Case(
        "no-vs-two-clones-sorted",
        [],
        [clone(2), clone(1)],
        "create",
        ["service-router--echo-pr1", "service-router--echo-pr2", "default"],
    ),
    Case(
        "multi-port-origin-creates-portless-routes",
        [],
        [clone(1)],
        "create",
        ["service-router--echo-pr1", "default"],
        origin_ports=(8080, 9090),
    ),
    Case(
        "default-only",
        [vs(http=[DEFAULT_ROUTE])],
        [clone(1)],
        "update",
        ["service-router--echo-pr1", "default"],
    ),
    Case(
        "several-routes",
        [vs(http=[API_ROUTE, WEIGHTED_ROUTE, REDIRECT_ROUTE, DEFAULT_ROUTE])],
        [clone(1)],
        "update",
        [
            "service-router--echo-pr1",
            "api",
            "service-router--echo-pr1--1",
            "canary",
            "old",
            "service-router--echo-pr1--2",
            "default",
        ],
    ),
    Case(
        "foreign-routes-before-and-after",
        [vs(http=[BILLING_ROUTE, DEFAULT_ROUTE, {"name": "after", "route": [to("other")]}])],
        [clone(1)],
        "update",
        ["billing", "service-router--echo-pr1", "default", "after"],
    ),
    Case(
        "two-clones",
        [vs(http=[API_ROUTE, DEFAULT_ROUTE])],
        [clone(2), clone(1)],
        "update",
        [
            "service-router--echo-pr1",
            "service-router--echo-pr2",
            "api",
            "service-router--echo-pr1--1",
            "service-router--echo-pr2--1",
            "default",
        ],
    ),
    Case(
        "clone-removed",
        [
            vs(
                http=[
                    managed("service-router--echo-pr1", DEFAULT_ROUTE, 1),
                    managed("service-router--echo-pr2", DEFAULT_ROUTE, 2),
                    DEFAULT_ROUTE,
                ]
            )
        ],
        [clone(2)],
        "update",
        ["service-router--echo-pr2", "default"],
    ),
    Case(
        "last-clone-removed-from-foreign-vs-keeps-it",
        [vs(http=[managed("service-router--echo-pr1", DEFAULT_ROUTE, 1), DEFAULT_ROUTE])],
        [],
        "update",
        ["default"],
    ),
    Case(
        "last-clone-removed-from-own-vs-deletes-it",
        [
            vs(
                hosts=(ORIGIN_FQDN,),
                labels=OURS,
                http=[managed("service-router--echo-pr1", DEFAULT_ROUTE, 1), DEFAULT_ROUTE],
            )
        ],
        [],
        "delete",
        ["service-router--echo-pr1", "default"],
    ),
    Case(
        "steady-state-writes-nothing",
        [vs(http=[managed("service-router--echo-pr1", DEFAULT_ROUTE, 1), DEFAULT_ROUTE])],
        [clone(1)],
        "none",
        ["service-router--echo-pr1", "default"],
    ),
    Case(
        "opted-out-vs-untouched-and-not-shadowed",
        [vs(http=[DEFAULT_ROUTE], annotations=OPT_OUT)],
        [clone(1)],
        "none",
        None,
        warnings=("opted out",),
    ),
    Case(
        "gateway-vs-without-opt-in-ignored-mesh-vs-created",
        [vs("echo-ingress", hosts=("echo.example.com", "echo"), gateways=GATEWAYS, http=[DEFAULT_ROUTE])],
        [clone(1)],
        "create",
        ["service-router--echo-pr1", "default"],
        warnings=("without opt-in",),
        picked="echo",
    ),
    Case(
        "gateway-vs-opted-in-is-not-the-mesh-vs",
        [
            vs(
                "echo-ingress",
                hosts=("echo.example.com", "echo"),
                gateways=GATEWAYS,
                annotations=OPT_IN,
                http=[DEFAULT_ROUTE],
            )
        ],
        [clone(1)],
        "create",
        ["service-router--echo-pr1", "default"],
        picked="echo",
    ),
    Case(
        "two-candidates-oldest-wins",
        [
            vs("young", http=[DEFAULT_ROUTE], created="2026-03-01T00:00:00Z"),
            vs("old", hosts=("echo.default",), http=[DEFAULT_ROUTE], created="2026-02-01T00:00:00Z"),
        ],
        [clone(1)],
        "update",
        ["service-router--echo-pr1", "default"],
        warnings=("2 VirtualServices serve echo.default: picked default/old, ignored default/young",),
        picked="old",
    ),
    Case(
        "mesh-vs-preferred-over-opted-in-gateway-vs",
        [
            vs(
                "gw",
                gateways=GATEWAYS,
                annotations=OPT_IN,
                http=[DEFAULT_ROUTE],
                created="2025-01-01T00:00:00Z",
            ),
            vs("mesh", gateways=["mesh", *GATEWAYS], http=[DEFAULT_ROUTE]),
        ],
        [clone(1)],
        "update",
        ["service-router--echo-pr1", "default"],
        picked="mesh",
    ),
    Case(
        "short-host-in-other-namespace-is-another-service",
        [vs("echo", namespace="other", hosts=("echo",), http=[DEFAULT_ROUTE])],
        [clone(1)],
        "create",
        ["service-router--echo-pr1", "default"],
    ),
    Case(
        "name-taken-by-unrelated-vs",
        [vs("echo", hosts=("unrelated",), http=[{"name": "x", "route": [to("unrelated")]}])],
        [clone(1)],
        "create",
        ["service-router--echo-pr1", "default"],
        warnings=("creating echo-service-router",),
        picked="echo-service-router",
    ),
    Case(
        "vs-serving-several-hosts-clones-only-origin-routes",
        [
            vs(
                hosts=("echo", "billing"),
                http=[
                    {
                        "name": "billing",
                        "match": [{"authority": {"exact": "billing"}}],
                        "route": [to("billing")],
                    },
                    DEFAULT_ROUTE,
                ],
            )
        ],
        [clone(1)],
        "update",
        ["billing", "service-router--echo-pr1", "default"],
    ),
    Case(
        "delegate-and-tcp-untouched",
        [
            vs(
                http=[
                    {"name": "delegated", "delegate": {"name": "echo-api", "namespace": NS}},
                    DEFAULT_ROUTE,
                ],
                extra_spec={"tcp": [{"match": [{"port": 9000}], "route": [to("echo", 9000)]}]},
            )
        ],
        [clone(1)],
        "update",
        ["delegated", "service-router--echo-pr1", "default"],
    ),
    Case(
        "clone-of-other-origin-ignored",
        [vs(http=[DEFAULT_ROUTE])],
        [Clone("billing-pr1", NS, "billing"), Clone("echo-pr1", "other", ORIGIN)],
        "none",
        ["default"],
    ),
    Case(
        "clone-lacking-the-route-port-not-routed",
        [vs(http=[{"name": "admin", "route": [to("echo", 9090)]}, DEFAULT_ROUTE])],
        [clone(1, ports=(8080,))],
        "update",
        ["admin", "service-router--echo-pr1--1", "default"],
    ),
    Case(
        "no-route-to-origin-warns",
        [vs(http=[BILLING_ROUTE])],
        [clone(1)],
        "none",
        ["billing"],
        warnings=("no http route to echo.default",),
    ),
    Case(
        "hand-edited-route-of-ours-restored",
        [vs(http=[managed("service-router--echo-pr1", {**DEFAULT_ROUTE, "timeout": "1s"}, 1), DEFAULT_ROUTE])],
        [clone(1)],
        "update",
        ["service-router--echo-pr1", "default"],
    ),
    Case(
        "route-named-like-ours-without-header-is-foreign-and-its-name-kept",
        [vs(http=[{"name": "service-router--echo-pr1", "route": [to("elsewhere")]}, DEFAULT_ROUTE])],
        [clone(1)],
        "update",
        ["service-router--echo-pr1", "service-router--echo-pr1--1", "default"],
        warnings=("named like the router's",),
        impostors=("service-router--echo-pr1",),
    ),
    Case(
        "host-without-clones-keeps-a-route-named-like-ours",
        [vs(http=[{"name": "service-router--x", "route": [to("echo", 8080)]}, DEFAULT_ROUTE])],
        [],
        "none",
        ["service-router--x", "default"],
        warnings=("named like the router's",),
        impostors=("service-router--x",),
    ),
    Case(
        "own-vs-without-clones-keeps-a-route-named-like-ours",
        [
            vs(
                hosts=(ORIGIN_FQDN,),
                labels=OURS,
                http=[{"name": "service-router--echo-pr1", "route": [to("echo", 8080)]}, DEFAULT_ROUTE],
            )
        ],
        [],
        "none",
        ["service-router--echo-pr1", "default"],
        origin_ports=(),
        warnings=("named like the router's", "kept"),
        impostors=("service-router--echo-pr1",),
    ),
]


def plan(case: Case, virtual_services: list[dict] | None = None) -> VirtualServicePlan:
    return plan_virtual_service(
        origin_service=ORIGIN,
        namespace=NS,
        origin_ports=case.origin_ports,
        clones=case.clones,
        virtual_services=case.virtual_services if virtual_services is None else virtual_services,
    )


def route_names(obj: dict | None) -> list[str] | None:
    return None if obj is None else [r.get("name", "") for r in obj["spec"].get("http", [])]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plan_action_and_route_order(case: Case) -> None:
    result = plan(case)
    assert result.action == case.action
    assert route_names(result.virtual_service) == case.names
    if case.picked is not None:
        assert result.virtual_service is not None
        assert result.virtual_service["metadata"]["name"] == case.picked
    for expected in case.warnings:
        assert any(expected in w for w in result.warnings), result.warnings
    if not case.warnings:
        assert result.warnings == ()
    if result.action in ("create", "update", "none") and result.virtual_service is not None:
        expected_managed = tuple(
            n for n in case.names or [] if n.startswith("service-router--") and n not in case.impostors
        )
        assert result.managed_routes == expected_managed


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_planning_on_the_planned_result_changes_nothing(case: Case) -> None:
    """Idempotence: once the plan is applied, the next plan is "none" (zero writes when steady)."""
    first = plan(case)
    if first.action in ("none",):
        assert plan(case).action == "none"
        return
    assert first.virtual_service is not None
    written = first.virtual_service
    others = [v for v in case.virtual_services if v["metadata"]["name"] != written["metadata"]["name"]]
    after = others if first.action == "delete" else [*others, written]
    second = plan(case, after)
    assert second.action == "none", second
    if first.action != "delete":
        assert second.virtual_service == written


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_inputs_are_not_mutated(case: Case) -> None:
    before = copy.deepcopy(case.virtual_services)
    plan(case)
    assert case.virtual_services == before


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_written_virtual_service_validates_against_istio_crd(case: Case, shared_dir: Path) -> None:
    result = plan(case)
    if result.action in ("create", "update"):
        assert result.virtual_service is not None
        assert istio_errors(result.virtual_service, shared_dir) == []


@pytest.mark.parametrize(
    "api_version", ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"]
)
def test_created_virtual_service_validates_in_each_api_version(api_version: str, shared_dir: Path) -> None:
    result = plan_virtual_service(
        origin_service=ORIGIN,
        namespace=NS,
        origin_ports=(80,),
        clones=[clone(1)],
        virtual_services=[],
        api_version=api_version,
    )
    assert result.virtual_service is not None
    assert result.virtual_service["apiVersion"] == api_version
    assert istio_errors(result.virtual_service, shared_dir) == []


def test_created_virtual_service_is_labelled_and_routes_origin_last() -> None:
    result = plan_virtual_service(
        origin_service=ORIGIN, namespace=NS, origin_ports=(8080,), clones=[clone(1)], virtual_services=[]
    )
    assert result.virtual_service == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "echo", "namespace": NS, "labels": OURS},
        "spec": {
            "hosts": [ORIGIN_FQDN],
            "http": [
                {
                    "name": "service-router--echo-pr1",
                    "match": [{"headers": {HEADER: {"exact": "echo-pr1.default"}}}],
                    "route": [to("echo-pr1.default.svc.cluster.local", 8080)],
                },
                {"name": "default", "route": [to(ORIGIN_FQDN, 8080)]},
            ],
        },
    }


def test_multi_port_origin_gets_portless_destinations() -> None:
    result = plan_virtual_service(
        origin_service=ORIGIN, namespace=NS, origin_ports=(8080, 9090), clones=[clone(1)], virtual_services=[]
    )
    assert result.virtual_service is not None
    http = result.virtual_service["spec"]["http"]
    assert [r["route"] for r in http] == [[to("echo-pr1.default.svc.cluster.local")], [to(ORIGIN_FQDN)]]


def test_update_keeps_metadata_and_other_spec_fields() -> None:
    observed = vs(http=[DEFAULT_ROUTE], extra_spec={"exportTo": ["."]}, annotations={"team": "qa"})
    result = plan_virtual_service(
        origin_service=ORIGIN,
        namespace=NS,
        origin_ports=(8080,),
        clones=[clone(1)],
        virtual_services=[observed],
    )
    assert result.virtual_service is not None
    assert result.virtual_service["metadata"] == observed["metadata"]
    assert result.virtual_service["metadata"]["resourceVersion"] == "42"
    assert result.virtual_service["spec"]["exportTo"] == ["."]
    assert result.virtual_service["spec"]["hosts"] == ["echo"]


def test_cloned_route_keeps_behaviour_and_adds_header_to_each_match_block() -> None:
    [copied, original] = desired_http_routes(
        [API_ROUTE], origin_service=ORIGIN, namespace=NS, vs_namespace=NS, clones=[clone(1)]
    )
    assert original == API_ROUTE
    assert copied == {
        **API_ROUTE,
        "name": "service-router--echo-pr1",
        "match": [
            {"uri": {"prefix": "/api/"}, "headers": {HEADER: {"exact": "echo-pr1.default"}}},
            {
                "uri": {"regex": "/v[0-9]+/.*"},
                "method": {"exact": "POST"},
                "headers": {HEADER: {"exact": "echo-pr1.default"}},
            },
        ],
        "route": [to("echo-pr1.default.svc.cluster.local", 8080)],
    }


def test_existing_header_conditions_are_kept_alongside_the_routing_header() -> None:
    [copied, _] = desired_http_routes(
        [WEIGHTED_ROUTE], origin_service=ORIGIN, namespace=NS, vs_namespace=NS, clones=[clone(1)]
    )
    assert copied["match"] == [{"headers": {"x-canary": {"exact": "1"}, HEADER: {"exact": "echo-pr1.default"}}}]


def test_weighted_origin_subsets_merge_into_one_clone_destination_others_kept() -> None:
    [copied, _] = desired_http_routes(
        [WEIGHTED_ROUTE], origin_service=ORIGIN, namespace=NS, vs_namespace=NS, clones=[clone(1)]
    )
    assert copied["route"] == [
        to("echo-pr1.default.svc.cluster.local", 8080, weight=90),
        to("legacy", 8080, weight=10),
    ]


@pytest.mark.parametrize(
    ("host", "vs_namespace", "serves"),
    [
        ("echo", NS, True),
        ("echo.default", NS, True),
        ("echo.default.svc", NS, True),
        ("echo.default.svc.cluster.local", NS, True),
        ("ECHO.Default.svc.cluster.local", NS, True),
        ("echo.default.svc.cluster.local", "other", True),
        ("echo", "other", False),
        ("echo.other", NS, False),
        ("echo-pr1", NS, False),
        ("*.default.svc.cluster.local", NS, False),
    ],
    ids=[
        "short",
        "dot-namespace",
        "dot-svc",
        "fqdn",
        "fqdn-mixed-case",
        "fqdn-from-other-namespace",
        "short-in-other-namespace",
        "other-namespace-spelled",
        "clone-name-not-origin",
        "wildcard-not-selected",
    ],
)
def test_select_matches_every_spelling_of_the_origin_host(host: str, vs_namespace: str, serves: bool) -> None:
    candidate = vs(hosts=(host,), namespace=vs_namespace, http=[DEFAULT_ROUTE])
    picked, _ = select_virtual_service([candidate], origin_service=ORIGIN, namespace=NS)
    assert (picked is candidate) is serves


def test_stale_routes_of_ours_to_gone_clones_are_dropped_never_cloned() -> None:
    """A route of ours is never a template for cloning, even when it targets the origin host."""
    stale = managed("service-router--echo-pr9", DEFAULT_ROUTE, 9)
    stale["route"].append(to("echo", 8080))
    http = [stale, DEFAULT_ROUTE]
    result = desired_http_routes(http, origin_service=ORIGIN, namespace=NS, vs_namespace=NS, clones=[clone(1)])
    assert [r["name"] for r in result] == ["service-router--echo-pr1", "default"]


def test_a_route_named_like_ours_is_foreign_kept_unchanged_and_cloned_like_any_other() -> None:
    """Without the routing header the prefix proves nothing: the route stays, PR traffic still wins."""
    lookalike = {"name": "service-router--gone", "timeout": "2s", "route": [to("echo")]}
    http = [lookalike, DEFAULT_ROUTE]
    result = desired_http_routes(http, origin_service=ORIGIN, namespace=NS, vs_namespace=NS, clones=[clone(1)])
    assert [r["name"] for r in result] == [
        "service-router--echo-pr1",
        "service-router--gone",
        "service-router--echo-pr1--1",
        "default",
    ]
    assert result[1] == lookalike
    assert result[0]["timeout"] == "2s"


ROUTE_OF_ECHO_PR1 = managed("service-router--echo-pr1", API_ROUTE, 1)


def _edit(base: dict, **changes: Any) -> dict:
    edited = copy.deepcopy(base)
    edited.update(changes)
    return edited


@pytest.mark.parametrize(
    ("route", "owner"),
    [
        (ROUTE_OF_ECHO_PR1, ("service-router-echo-default", "echo-pr1")),
        (_edit(ROUTE_OF_ECHO_PR1, name="service-router--echo-pr1--3"), ("service-router-echo-default", "echo-pr1")),
        (managed("service-router--echo-pr1", DEFAULT_ROUTE, 1), ("service-router-echo-default", "echo-pr1")),
        (_edit(ROUTE_OF_ECHO_PR1, name="service-router--echo-pr2"), None),
        (_edit(ROUTE_OF_ECHO_PR1, name="service-router--echo-pr1-x"), None),
        (_edit(ROUTE_OF_ECHO_PR1, name="echo-pr1"), None),
        (_edit(ROUTE_OF_ECHO_PR1, route=[to("echo", 8080)]), None),
        (_edit(ROUTE_OF_ECHO_PR1, route=[to("echo-pr1.other.svc.cluster.local", 8080)]), None),
        (_edit(ROUTE_OF_ECHO_PR1, match=[{"uri": {"prefix": "/"}}]), None),
        (_edit(ROUTE_OF_ECHO_PR1, match=[ROUTE_OF_ECHO_PR1["match"][0], {"uri": {"prefix": "/"}}]), None),
        (_edit(ROUTE_OF_ECHO_PR1, match=[{"headers": {HEADER: {"prefix": "echo-pr1.default"}}}]), None),
        (_edit(ROUTE_OF_ECHO_PR1, match=[{"headers": {HEADER: {"exact": "echo-pr2.default"}}}]), None),
        (
            _edit(ROUTE_OF_ECHO_PR1, match=[{"headers": {"service-router-echo-qa": {"exact": "echo-pr1.default"}}}]),
            None,
        ),
        ({k: v for k, v in ROUTE_OF_ECHO_PR1.items() if k != "match"}, None),
        ({"name": "service-router--echo-pr1", "route": [to("echo-pr1")]}, None),
    ],
    ids=[
        "ours",
        "ours-nth",
        "ours-no-other-match",
        "name-of-another-clone",
        "name-not-exactly-the-clones",
        "no-prefix",
        "destination-not-the-clone",
        "destination-clone-name-other-namespace",
        "no-routing-header",
        "one-block-without-the-header",
        "header-not-exact",
        "header-names-another-clone",
        "header-of-another-namespace",
        "no-match",
        "prefix-and-destination-only",
    ],
)
def test_a_route_is_ours_only_with_name_header_and_destination(route: dict, owner: tuple[str, str] | None) -> None:
    found = route_owner(route, vs_namespace=NS)
    assert (None if found is None else (found.header, found.clone)) == owner


@pytest.mark.parametrize(
    ("case_id", "routed"),
    [
        ("no-vs-two-clones-sorted", ("echo-pr1", "echo-pr2")),
        ("clone-removed", ("echo-pr2",)),
        ("clone-lacking-the-route-port-not-routed", ("echo-pr1",)),
        ("no-route-to-origin-warns", ()),
        ("last-clone-removed-from-own-vs-deletes-it", ()),
    ],
    ids=["two-created", "one-left", "routed-by-a-later-route", "nothing-to-clone", "deleted"],
)
def test_routed_clones_name_the_clones_with_a_managed_route(case_id: str, routed: tuple[str, ...]) -> None:
    [case] = [c for c in CASES if c.id == case_id]
    assert plan(case).routed_clones == routed


def test_two_origins_in_one_virtual_service_keep_each_others_routes() -> None:
    """Planning for one origin never strips or clones the managed routes of another origin."""
    billing_default = {"name": "billing", "match": [{"authority": {"prefix": "billing"}}], "route": [to("billing")]}
    shared = vs(hosts=("echo", "billing"), http=[billing_default, DEFAULT_ROUTE])
    echo_plan = plan_virtual_service(
        origin_service=ORIGIN, namespace=NS, origin_ports=(8080,), clones=[clone(1)], virtual_services=[shared]
    )
    assert echo_plan.virtual_service is not None
    billing_plan = plan_virtual_service(
        origin_service="billing",
        namespace=NS,
        origin_ports=(80,),
        clones=[Clone("billing-pr7", NS, "billing")],
        virtual_services=[echo_plan.virtual_service],
    )
    assert billing_plan.action == "update"
    assert billing_plan.virtual_service is not None
    assert route_names(billing_plan.virtual_service) == [
        "service-router--billing-pr7",
        "billing",
        "service-router--echo-pr1",
        "default",
    ]
    assert billing_plan.managed_routes == ("service-router--billing-pr7",)
    again = plan_virtual_service(
        origin_service=ORIGIN,
        namespace=NS,
        origin_ports=(8080,),
        clones=[clone(1)],
        virtual_services=[billing_plan.virtual_service],
    )
    assert again.action == "none"


INGRESS = vs(
    "echo-ingress",
    hosts=("echo.example.com",),
    gateways=GATEWAYS,
    annotations=OPT_IN,
    http=[API_ROUTE, {"name": "web", "route": [to("web")]}],
)


@pytest.mark.parametrize(
    ("virtual_services", "clones", "actions", "names"),
    [
        ([INGRESS], [clone(1)], ["update"], [["service-router--echo-pr1", "api", "web"]]),
        ([INGRESS], [], ["none"], [["api", "web"]]),
        ([{**INGRESS, "metadata": {**INGRESS["metadata"], "annotations": {}}}], [clone(1)], [], []),
        ([{**INGRESS, "metadata": {**INGRESS["metadata"], "annotations": {**OPT_IN, **OPT_OUT}}}], [clone(1)], [], []),
        ([vs("web-ingress", gateways=GATEWAYS, annotations=OPT_IN, http=[BILLING_ROUTE])], [clone(1)], [], []),
        ([vs(http=[DEFAULT_ROUTE])], [clone(1)], [], []),
    ],
    ids=["opted-in", "opted-in-no-clone", "not-opted-in", "opted-out-wins", "no-route-to-origin", "mesh-vs-not-here"],
)
def test_gateway_plans(
    virtual_services: list[dict], clones: list[Clone], actions: list[str], names: list[list[str]]
) -> None:
    plans = plan_gateway_virtual_services(
        origin_service=ORIGIN, namespace=NS, clones=clones, virtual_services=virtual_services
    )
    assert [p.action for p in plans] == actions
    assert [route_names(p.virtual_service) for p in plans] == names


def test_gateway_plan_steady_state_and_removal(shared_dir: Path) -> None:
    [routed] = plan_gateway_virtual_services(
        origin_service=ORIGIN, namespace=NS, clones=[clone(1)], virtual_services=[INGRESS]
    )
    assert routed.virtual_service is not None
    assert istio_errors(routed.virtual_service, shared_dir) == []
    [steady] = plan_gateway_virtual_services(
        origin_service=ORIGIN, namespace=NS, clones=[clone(1)], virtual_services=[routed.virtual_service]
    )
    assert steady.action == "none"
    [removed] = plan_gateway_virtual_services(
        origin_service=ORIGIN, namespace=NS, clones=[], virtual_services=[routed.virtual_service]
    )
    assert removed.action == "update"
    assert removed.virtual_service is not None
    assert removed.virtual_service["spec"]["http"] == INGRESS["spec"]["http"]


def test_plan_virtual_services_is_the_mesh_plan_then_the_gateway_plans() -> None:
    plans = plan_virtual_services(
        origin_service=ORIGIN, namespace=NS, origin_ports=(8080,), clones=[clone(1)], virtual_services=[INGRESS]
    )
    assert [(p.action, p.virtual_service and p.virtual_service["metadata"]["name"]) for p in plans] == [
        ("create", "echo"),
        ("update", "echo-ingress"),
    ]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_route_names_unique_and_header_names_lower_case(case: Case) -> None:
    """Istio rejects duplicate route names and upper-case header names in matches."""
    result = plan(case)
    if result.virtual_service is None:
        return
    http = result.virtual_service["spec"].get("http", [])
    names = [r.get("name") for r in http if r.get("name")]
    assert len(names) == len(set(names))
    for route in http:
        for block in route.get("match", []):
            assert all(name == name.lower() for name in block.get("headers", {}))


@pytest.mark.parametrize(
    ("origin_ports", "expected_port"),
    [((8080, 9090), None), ((9090,), {"number": 9090}), ((), {"number": 8080})],
    ids=["origin-gained-a-port", "origin-port-changed", "origin-unknown-kept"],
)
def test_own_default_route_follows_origin_ports(origin_ports: tuple[int, ...], expected_port: dict | None) -> None:
    own = vs(
        hosts=(ORIGIN_FQDN,),
        labels=OURS,
        http=[managed("service-router--echo-pr1", DEFAULT_ROUTE, 1), DEFAULT_ROUTE],
    )
    result = plan_virtual_service(
        origin_service=ORIGIN, namespace=NS, origin_ports=origin_ports, clones=[clone(1)], virtual_services=[own]
    )
    assert result.virtual_service is not None
    http = result.virtual_service["spec"]["http"]
    assert [r["name"] for r in http] == ["service-router--echo-pr1", "default"]
    assert [r["route"][0]["destination"].get("port") for r in http] == [expected_port, expected_port]


def test_foreign_default_route_port_is_never_changed() -> None:
    foreign = vs(http=[DEFAULT_ROUTE])
    result = plan_virtual_service(
        origin_service=ORIGIN, namespace=NS, origin_ports=(8080, 9090), clones=[clone(1)], virtual_services=[foreign]
    )
    assert result.virtual_service is not None
    assert result.virtual_service["spec"]["http"][-1] == DEFAULT_ROUTE


def test_own_virtual_service_with_routes_added_by_someone_is_kept() -> None:
    own = vs(
        hosts=(ORIGIN_FQDN,),
        labels=OURS,
        http=[managed("service-router--echo-pr1", DEFAULT_ROUTE, 1), BILLING_ROUTE, DEFAULT_ROUTE],
    )
    result = plan_virtual_service(
        origin_service=ORIGIN, namespace=NS, origin_ports=(8080,), clones=[], virtual_services=[own]
    )
    assert result.action == "update"
    assert route_names(result.virtual_service) == ["billing", "default"]
    assert any("kept" in w for w in result.warnings)


def test_created_name_avoids_every_taken_name() -> None:
    taken = [vs(name, hosts=("unrelated",)) for name in ("echo", "echo-service-router", "echo-service-router-2")]
    result = plan_virtual_service(
        origin_service=ORIGIN, namespace=NS, origin_ports=(8080,), clones=[clone(1)], virtual_services=taken
    )
    assert result.action == "create"
    assert result.virtual_service is not None
    assert result.virtual_service["metadata"]["name"] == "echo-service-router-3"


@pytest.mark.parametrize(
    ("virtual_services", "clones", "actions", "names"),
    [
        ([], [clone(1)], ["none"], [None]),
        ([vs(http=[DEFAULT_ROUTE])], [clone(1)], ["none"], [["default"]]),
        (
            [vs(http=[managed("service-router--echo-pr1", DEFAULT_ROUTE, 1), DEFAULT_ROUTE])],
            [clone(1), clone(2)],
            ["none"],
            [["service-router--echo-pr1", "default"]],
        ),
        (
            [vs(http=[managed("service-router--echo-pr1", DEFAULT_ROUTE, 1), DEFAULT_ROUTE])],
            [],
            ["update"],
            [["default"]],
        ),
        ([INGRESS], [clone(1)], ["none", "none"], [None, ["api", "web"]]),
    ],
    ids=["nothing-created", "no-route-added", "standing-route-kept-none-added", "gone-clone-removed", "gateway"],
)
def test_a_missing_origin_gets_nothing_new(
    virtual_services: list[dict], clones: list[Clone], actions: list[str], names: list[list[str] | None]
) -> None:
    plans = plan_virtual_services(
        origin_service=ORIGIN,
        namespace=NS,
        origin_ports=(),
        clones=clones,
        virtual_services=virtual_services,
        origin_exists=False,
    )
    assert [p.action for p in plans] == actions
    assert [route_names(p.virtual_service) for p in plans] == names
