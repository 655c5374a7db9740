"""The Gateway API evaluator picks the rule the specification's precedence selects.

HTTPRouteRule (gateway-api.sigs.k8s.io/reference/spec): across all rules of the routes attached
to a parent, an Exact path beats a PathPrefix, a longer prefix a shorter one, then a method match,
then more header matches, then more query-parameter matches; ties go to the oldest route, then
``namespace/name``, then the first rule.
"""

from __future__ import annotations

from typing import Any

import pytest

from service_router.gateway_evaluate import attached, route_http_request, select_grpc_rule, select_http_rule


def route(
    name: str,
    rules: list[dict[str, Any]],
    *,
    created: str = "2024-01-01T00:00:00Z",
    namespace: str = "ns",
    kind: str = "HTTPRoute",
) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "svc", "port": 80}], "rules": rules},
    }


def to(backend: str, *matches: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = {"backendRefs": [{"name": backend, "port": 80}]}
    if matches:
        rule["matches"] = list(matches)
    return rule


def path(kind: str, value: str) -> dict[str, Any]:
    return {"type": kind, "value": value}


def header(name: str, value: str, kind: str = "Exact") -> dict[str, Any]:
    return {"type": kind, "name": name, "value": value}


ROUTES = [
    route(
        "main",
        [
            to("catch-all"),
            to("prefix-api", {"path": path("PathPrefix", "/api")}),
            to("prefix-api-v1", {"path": path("PathPrefix", "/api/v1/")}),
            to("exact", {"path": path("Exact", "/api/v1/exact")}),
            to("post", {"path": path("PathPrefix", "/api"), "method": "POST"}),
            to("one-header", {"path": path("PathPrefix", "/api"), "headers": [header("x-a", "1")]}),
            to(
                "two-headers", {"path": path("PathPrefix", "/api"), "headers": [header("x-a", "1"), header("x-b", "2")]}
            ),
            to(
                "regex-header",
                {"path": path("PathPrefix", "/api"), "headers": [header("x-r", "v[0-9]+", "RegularExpression")]},
            ),
            to("query", {"path": path("PathPrefix", "/api"), "queryParams": [{"name": "debug", "value": "1"}]}),
            to("regex-path", {"path": path("RegularExpression", "/files/.*\\.png")}),
        ],
    )
]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"path": "/"}, "catch-all"),
        ({"path": "/apix"}, "catch-all"),
        ({"path": "/api"}, "prefix-api"),
        ({"path": "/api/"}, "prefix-api"),
        ({"path": "/api/v1"}, "prefix-api-v1"),
        ({"path": "/api/v1/exact"}, "exact"),
        ({"path": "/api/v1/exact", "method": "POST", "headers": {"x-a": "1", "x-b": "2"}}, "exact"),
        ({"path": "/api/x", "method": "POST", "headers": {"x-a": "1", "x-b": "2"}}, "post"),
        ({"path": "/api/x", "headers": {"X-A": "1"}}, "one-header"),
        ({"path": "/api/x", "headers": {"x-a": "1", "x-b": "2"}}, "two-headers"),
        ({"path": "/api/x", "headers": {"x-a": "2"}}, "prefix-api"),
        ({"path": "/api/x", "headers": {"x-r": "v12"}}, "regex-header"),
        ({"path": "/api/x", "headers": {"x-r": "xv12"}}, "prefix-api"),
        ({"path": "/api/x?debug=1"}, "query"),
        ({"path": "/api/x", "query": {"debug": ["1"]}}, "query"),
        ({"path": "/api/x?debug=1", "headers": {"x-a": "1"}}, "one-header"),
        ({"path": "/files/a.png"}, "regex-path"),
        ({"path": "/files/a.jpg"}, "catch-all"),
    ],
    ids=[
        "root",
        "prefix-is-element-wise",
        "prefix",
        "prefix-trailing-slash",
        "longest-prefix",
        "exact-beats-prefix",
        "exact-beats-method-and-headers",
        "method-beats-headers",
        "header-names-any-case",
        "more-headers-win",
        "header-value-differs",
        "regex-header",
        "regex-is-full-match",
        "query-in-path",
        "query-given",
        "headers-beat-query",
        "regex-path",
        "regex-path-no-match",
    ],
)
def test_the_rule_selected_follows_the_gateway_api_precedence(request_: dict[str, Any], expected: str) -> None:
    selected = select_http_rule(ROUTES, **request_)
    assert selected is not None and selected.backend == expected


def test_ties_go_to_the_oldest_route_then_namespace_name_then_the_first_rule() -> None:
    same = {"path": path("PathPrefix", "/")}
    young = route("a", [to("young", same)], created="2024-02-01T00:00:00Z")
    old = route("z", [to("old", same)], created="2024-01-01T00:00:00Z")
    assert select_http_rule([young, old]).backend == "old"  # type: ignore[union-attr]
    b = route("b", [to("b", same)])
    a_other_ns = route("b", [to("a-ns", same)], namespace="a")
    assert select_http_rule([b, a_other_ns]).backend == "a-ns"  # type: ignore[union-attr]
    first = route("r", [to("first", same), to("second", same)])
    selected = select_http_rule([first])
    assert selected is not None and (selected.backend, selected.rule_index) == ("first", 0)


def test_no_route_attached_means_the_service_itself_and_none_matching_means_nowhere() -> None:
    assert route_http_request([], service="svc", namespace="ns") == "svc"
    only_exact = route("r", [to("x", {"path": path("Exact", "/only")})])
    assert route_http_request([only_exact], service="svc", namespace="ns", path="/") is None
    assert attached([only_exact], service="svc", namespace="ns", port=81) == []
    assert attached([only_exact], service="other", namespace="ns") == []


def test_the_heaviest_backend_is_where_most_traffic_goes() -> None:
    split = route(
        "r", [{"backendRefs": [{"name": "a", "port": 80, "weight": 10}, {"name": "b", "port": 80, "weight": 90}]}]
    )
    assert route_http_request([split], service="svc", namespace="ns") == "b"


@pytest.mark.parametrize(
    ("service", "method", "headers", "expected"),
    [
        ("pkg.Echo", "Say", {}, "method"),
        ("pkg.Echo", "Other", {}, "service"),
        ("pkg.Other", "Say", {}, "any"),
        ("pkg.Echo", "Say", {"x-a": "1"}, "method"),
        ("pkg.Other", "Say", {"x-a": "1"}, "header"),
        ("pkg.Echo", "Shout", {}, "regex"),
    ],
    ids=["exact-method", "service-only", "catch-all", "method-beats-header", "header", "regex-method"],
)
def test_grpc_rules_rank_by_service_then_method_then_headers(
    service: str, method: str, headers: dict[str, str], expected: str
) -> None:
    grpc = route(
        "g",
        [
            to("any"),
            to("service", {"method": {"service": "pkg.Echo"}}),
            to("method", {"method": {"type": "Exact", "service": "pkg.Echo", "method": "Say"}}),
            to("header", {"headers": [header("x-a", "1")]}),
            to("regex", {"method": {"type": "RegularExpression", "service": "pkg\\.Echo", "method": "Sh.*"}}),
        ],
        kind="GRPCRoute",
    )
    selected = select_grpc_rule([grpc], service=service, method=method, headers=headers)
    assert selected is not None and selected.backend == expected
