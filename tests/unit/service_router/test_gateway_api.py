"""--routing-api: which backend routes an origin, and which keys a Gateway API route change enqueues."""

from __future__ import annotations

from typing import Any

import pytest

from service_router.gateway_api import (
    RoutingApi,
    RoutingApis,
    grpc_route_resource,
    http_route_resource,
    uses_gateway_api,
)
from service_router.gateway_reconcile import keys_for_gateway_route, keys_for_gateway_route_change
from service_router.istio import virtual_service_resource
from service_router.settings import parse_settings

VS = virtual_service_resource("v1")
BOTH = RoutingApis(virtual_services=VS, http_routes=http_route_resource(), grpc_routes=grpc_route_resource())
VS_ONLY = RoutingApis(virtual_services=VS)
GATEWAY_ONLY = RoutingApis(http_routes=http_route_resource(), grpc_routes=grpc_route_resource())


def route(service: str, **labels: str) -> dict[str, Any]:
    return {
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "ns", "labels": labels},
        "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": service}]},
    }


@pytest.mark.parametrize(
    ("mode", "apis", "attached", "expected"),
    [
        ("auto", BOTH, [], False),
        ("auto", BOTH, [route("echo")], True),
        ("auto", BOTH, [route("other")], False),
        ("auto", GATEWAY_ONLY, [], True),
        ("auto", VS_ONLY, [route("echo")], False),
        ("virtualservice", BOTH, [route("echo")], False),
        ("gateway-api", BOTH, [], True),
    ],
    ids=[
        "auto-no-route-vs",
        "auto-attached-route",
        "auto-route-of-another-service",
        "auto-no-vs-kind",
        "auto-no-gateway-api",
        "virtualservice-forced",
        "gateway-api-forced",
    ],
)
def test_which_backend_routes_an_origin(
    mode: RoutingApi, apis: RoutingApis, attached: list[dict[str, Any]], expected: bool
) -> None:
    assert uses_gateway_api(mode, apis, attached, origin_service="echo", namespace="ns") is expected


@pytest.mark.parametrize(("argv", "expected"), [([], "auto"), (["--routing-api=gateway-api"], "gateway-api")])
def test_the_routing_api_flag(argv: list[str], expected: str) -> None:
    assert parse_settings(argv, {}).routing_api == expected


def test_an_unknown_routing_api_is_refused() -> None:
    with pytest.raises(SystemExit):
        parse_settings(["--routing-api=linkerd"], {})


def test_a_route_enqueues_the_services_it_attaches_to_and_ours_their_origin_and_a_lost_clone() -> None:
    assert keys_for_gateway_route(route("echo")) == ["ns/echo"]
    ours = route(
        "echo",
        **{
            "app.kubernetes.io/managed-by": "service-router",
            "service-router.mercari.com/origin": "echo",
            "service-router.mercari.com/clone": "echo-pr1",
            "service-router.mercari.com/role": "derived",
        },
    )
    assert keys_for_gateway_route(ours) == ["ns/echo"]
    assert keys_for_gateway_route_change(ours, None) == ["ns/echo", "ns/echo-pr1"]
    assert keys_for_gateway_route_change(ours, ours) == ["ns/echo"]
