"""Istio's first-match routing, modelled: and proof that planned routes do what they promise."""

from __future__ import annotations

from typing import Any

import pytest

from service_router.evaluate import Destination, evaluate, find_virtual_service
from service_router.routes import Clone, plan_virtual_service

NS = "default"
ECHO = "echo.default.svc.cluster.local"
HEADER = "service-router-echo-default"


def vs(name: str, hosts: list[str], http: list[dict], **extra: Any) -> dict:
    metadata = {"name": name, "namespace": extra.pop("namespace", NS)}
    metadata.update(extra.pop("metadata", {}))
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": metadata,
        "spec": {"hosts": hosts, "http": http, **extra},
    }


def to(host: str, port: int | None = None, **extra: Any) -> dict:
    destination: dict[str, Any] = {"host": host}
    if port is not None:
        destination["port"] = {"number": port}
    if "subset" in extra:
        destination["subset"] = extra.pop("subset")
    return {"destination": destination, **extra}


ROUTES = vs(
    "echo",
    ["echo"],
    [
        {"name": "exact", "match": [{"uri": {"exact": "/health"}}], "route": [to("health")]},
        {
            "name": "api",
            "match": [{"uri": {"prefix": "/api/"}, "method": {"exact": "POST"}}, {"uri": {"regex": "/v[0-9]+/.*"}}],
            "rewrite": {"uri": "/"},
            "route": [to("api", 8080)],
        },
        {"name": "case", "match": [{"uri": {"prefix": "/CaSe"}, "ignoreUriCase": True}], "route": [to("case")]},
        {"name": "hdr-prefix", "match": [{"headers": {"x-user": {"prefix": "qa-"}}}], "route": [to("qa")]},
        {"name": "hdr-regex", "match": [{"headers": {"x-ver": {"regex": "v[12]"}}}], "route": [to("v12")]},
        {"name": "hdr-present", "match": [{"headers": {"x-debug": {}}}], "route": [to("debug")]},
        {
            "name": "without",
            "match": [{"uri": {"prefix": "/beta"}, "withoutHeaders": {"x-stable": {}}}],
            "route": [to("beta")],
        },
        {"name": "query", "match": [{"queryParams": {"flag": {"exact": "on"}}}], "route": [to("flagged")]},
        {"name": "port", "match": [{"port": 9090}], "route": [to("admin", 9090)]},
        {"name": "labels", "match": [{"sourceLabels": {"app": "qa-bot"}}], "route": [to("bot")]},
        {"name": "other-ns", "match": [{"sourceNamespace": "tools"}], "route": [to("tooling")]},
        {"name": "redirect", "match": [{"uri": {"exact": "/old"}}], "redirect": {"uri": "/new"}},
        {
            "name": "weighted",
            "match": [{"uri": {"prefix": "/w"}}],
            "route": [to("echo", subset="v1", weight=30), to("echo", subset="v2", weight=70)],
        },
        {"name": "default", "match": [{"uri": {"prefix": "/"}}], "route": [to("echo", 8080)]},
    ],
)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({}, Destination(ECHO, 8080)),
        ({"path": "/health"}, Destination("health.default.svc.cluster.local")),
        ({"path": "/health/x"}, Destination(ECHO, 8080)),
        ({"path": "/health?probe=1"}, Destination("health.default.svc.cluster.local")),
        ({"path": "/api/x", "method": "POST"}, Destination("api.default.svc.cluster.local", 8080)),
        ({"path": "/api/x", "method": "post"}, Destination("api.default.svc.cluster.local", 8080)),
        ({"path": "/api/x"}, Destination(ECHO, 8080)),
        ({"path": "/v2/items"}, Destination("api.default.svc.cluster.local", 8080)),
        ({"path": "/v2"}, Destination(ECHO, 8080)),
        ({"path": "/xv2/items"}, Destination(ECHO, 8080)),
        ({"path": "/case/x"}, Destination("case.default.svc.cluster.local")),
        ({"headers": {"X-User": "qa-ann"}}, Destination("qa.default.svc.cluster.local")),
        ({"headers": {"x-user": "dev-ann"}}, Destination(ECHO, 8080)),
        ({"headers": {"x-ver": "v2"}}, Destination("v12.default.svc.cluster.local")),
        ({"headers": {"x-ver": "v22"}}, Destination(ECHO, 8080)),
        ({"headers": {"x-debug": ""}}, Destination("debug.default.svc.cluster.local")),
        ({"path": "/beta"}, Destination("beta.default.svc.cluster.local")),
        ({"path": "/beta", "headers": {"x-stable": "1"}}, Destination(ECHO, 8080)),
        ({"path": "/?flag=on"}, Destination("flagged.default.svc.cluster.local")),
        ({"path": "/?flag=off"}, Destination(ECHO, 8080)),
        ({"port": 9090}, Destination("admin.default.svc.cluster.local", 9090)),
        ({"host": "echo:9090"}, Destination("admin.default.svc.cluster.local", 9090)),
        ({"source_labels": {"app": "qa-bot"}}, Destination("bot.default.svc.cluster.local")),
        ({"path": "/old"}, None),
        ({"path": "/w"}, Destination(ECHO, None, "v2", 70)),
        ({"host": "echo.default"}, Destination(ECHO, 8080)),
        ({"host": "echo.default.svc"}, Destination(ECHO, 8080)),
        ({"host": ECHO}, Destination(ECHO, 8080)),
        ({"host": ECHO, "namespace": "tools"}, Destination("tooling.default.svc.cluster.local")),
        ({"host": "echo", "namespace": "tools"}, Destination("echo.tools.svc.cluster.local")),
        ({"host": "billing"}, Destination("billing.default.svc.cluster.local")),
        ({"gateway": "istio-system/ingress"}, Destination(ECHO)),
    ],
    ids=[
        "default",
        "exact-uri",
        "exact-uri-is-not-prefix",
        "exact-uri-ignores-query",
        "prefix-and-method",
        "method-case-insensitive",
        "prefix-without-method-falls-through",
        "regex-uri",
        "regex-is-a-full-match",
        "regex-anchored-at-start",
        "ignore-uri-case",
        "header-prefix-name-case-insensitive",
        "header-prefix-mismatch",
        "header-regex",
        "header-regex-full-match",
        "header-presence",
        "without-headers-absent",
        "without-headers-present",
        "query-param",
        "query-param-mismatch",
        "port",
        "port-from-host",
        "source-labels",
        "redirect-forwards-nowhere",
        "weighted-picks-heaviest",
        "host-dot-namespace",
        "host-dot-svc",
        "host-fqdn",
        "client-in-other-namespace-by-fqdn",
        "short-host-from-other-namespace-is-another-service",
        "no-virtual-service-goes-to-the-host",
        "mesh-vs-does-not-apply-at-a-gateway",
    ],
)
def test_first_match_routing(request_: dict, expected: Destination | None) -> None:
    kwargs = {"host": "echo", "namespace": NS, **request_}
    assert evaluate([ROUTES], **kwargs) == expected


def test_no_route_matches_is_none() -> None:
    only_api = vs("echo", ["echo"], [{"match": [{"uri": {"prefix": "/api"}}], "route": [to("echo")]}])
    assert evaluate([only_api], host="echo", namespace=NS, path="/") is None


def test_first_match_wins_over_a_later_more_specific_route() -> None:
    routes = vs(
        "echo",
        ["echo"],
        [
            {"name": "catch-all", "route": [to("first")]},
            {"name": "specific", "match": [{"uri": {"exact": "/x"}}], "route": [to("second")]},
        ],
    )
    assert evaluate([routes], host="echo", namespace=NS, path="/x") == Destination("first.default.svc.cluster.local")


@pytest.mark.parametrize(
    ("virtual_services", "expected_name"),
    [
        (
            [
                vs("young", ["echo"], [], metadata={"creationTimestamp": "2026-02-01T00:00:00Z"}),
                vs("old", [ECHO], [], metadata={"creationTimestamp": "2026-01-01T00:00:00Z"}),
            ],
            "old",
        ),
        ([vs("wild", ["*.default.svc.cluster.local"], []), vs("exact", ["echo"], [])], "exact"),
        ([vs("wide", ["*.svc.cluster.local"], []), vs("narrow", ["*.default.svc.cluster.local"], [])], "narrow"),
        ([vs("gw", ["echo"], [], gateways=["ingress"])], None),
        ([vs("both", ["echo"], [], gateways=["mesh", "ingress"])], "both"),
        ([vs("elsewhere", ["echo"], [], namespace="other")], None),
    ],
    ids=[
        "oldest-of-two",
        "exact-beats-wildcard",
        "longer-wildcard",
        "gateway-only",
        "mesh-and-gateway",
        "short-elsewhere",
    ],
)
def test_virtual_service_choice(virtual_services: list[dict], expected_name: str | None) -> None:
    found = find_virtual_service(virtual_services, host="echo", namespace=NS)
    assert (found and found["metadata"]["name"]) == expected_name


def test_gateway_request_uses_gateway_bound_virtual_service() -> None:
    ingress = vs("ingress", ["echo.example.com"], [{"route": [to("echo", 80)]}], gateways=["istio-system/ingress"])
    assert evaluate([ingress], host="echo.example.com", namespace=NS, gateway="istio-system/ingress") == Destination(
        ECHO, 80
    )
    assert evaluate([ingress], host="echo.example.com", namespace=NS, gateway="ingress") == Destination(ECHO, 80)
    assert evaluate([ingress], host="echo.example.com", namespace=NS) == Destination("echo.example.com")


def test_delegate_routes_are_tried_in_place_and_fall_through() -> None:
    parent = vs(
        "parent",
        ["echo"],
        [
            {"match": [{"uri": {"prefix": "/api"}}], "delegate": {"name": "api-routes"}},
            {"route": [to("echo")]},
        ],
    )
    child = {
        "metadata": {"name": "api-routes", "namespace": NS},
        "spec": {"http": [{"match": [{"uri": {"prefix": "/api/v1"}}], "route": [to("api-v1")]}]},
    }
    assert evaluate([parent, child], host="echo", namespace=NS, path="/api/v1/x") == Destination(
        "api-v1.default.svc.cluster.local"
    )
    assert evaluate([parent, child], host="echo", namespace=NS, path="/api/v2") == Destination(ECHO)


# --- planned routes, evaluated ------------------------------------------------------------------

ORIGIN_VS = vs(
    "echo",
    ["echo"],
    [
        {"name": "billing", "match": [{"uri": {"prefix": "/billing"}}], "route": [to("billing")]},
        {
            "name": "api",
            "match": [{"uri": {"prefix": "/api/"}}, {"uri": {"regex": "/v[0-9]+/.*"}}],
            "rewrite": {"uri": "/"},
            "retries": {"attempts": 2},
            "route": [to("echo", 8080, subset="v1", weight=80), to("legacy", 8080, weight=20)],
        },
        {"name": "default", "route": [to("echo", 8080)]},
    ],
)
CLONES = [Clone("echo-pr1", NS, "echo"), Clone("echo-pr2", NS, "echo")]
PATHS = ["/", "/api/x", "/v3/items", "/billing/1", "/other"]


def planned(virtual_services: list[dict], clones: list[Clone]) -> list[dict]:
    plan = plan_virtual_service(
        origin_service="echo", namespace=NS, origin_ports=(8080,), clones=clones, virtual_services=virtual_services
    )
    assert plan.virtual_service is not None
    return [plan.virtual_service]


@pytest.mark.parametrize("virtual_services", [[ORIGIN_VS], []], ids=["existing-vs", "created-vs"])
@pytest.mark.parametrize("path", PATHS)
def test_header_reaches_clone_absent_or_stale_header_reaches_origin(virtual_services: list[dict], path: str) -> None:
    before = evaluate(virtual_services, host="echo", namespace=NS, path=path, port=8080)
    after = planned(virtual_services, CLONES)

    def go(headers: dict[str, str]) -> Destination | None:
        return evaluate(after, host="echo", namespace=NS, path=path, headers=headers, port=8080)

    assert go({}) == before, "requests without the header keep their route"
    assert go({HEADER: "echo-pr9.default"}) == before, "a stale header falls through to the origin"
    assert go({"x-unrelated": "echo-pr1.default"}) == before
    for clone in CLONES:
        with_header = go({HEADER: f"{clone.service}.default"})
        if before is not None and before.host == ECHO:
            assert with_header == Destination(f"{clone.service}.default.svc.cluster.local", 8080, None, before.weight)
        else:
            assert with_header == before, "traffic that never reached the origin is not diverted"


def test_removed_clone_header_falls_through_after_replanning() -> None:
    routed = planned([ORIGIN_VS], CLONES)
    pruned = planned(routed, [CLONES[1]])
    assert evaluate(pruned, host="echo", namespace=NS, headers={HEADER: "echo-pr1.default"}) == Destination(ECHO, 8080)
    assert evaluate(pruned, host="echo", namespace=NS, headers={HEADER: "echo-pr2.default"}) == Destination(
        "echo-pr2.default.svc.cluster.local", 8080
    )
