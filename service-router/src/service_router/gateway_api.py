"""Which routing APIs the cluster serves, and which one routes a given origin (``--routing-api``).

The router routes through Istio VirtualServices or through Gateway API routes (HTTPRoute,
GRPCRoute of ``gateway.networking.k8s.io``, attached to Services as on GAMMA meshes). With
``auto`` (the default) an origin is routed by the Gateway API when a route of that API is already
attached to its Service, or when VirtualServices are not served; by its VirtualService otherwise.
At start the router waits until one API it may use is served (either may be installed after it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from controller_common.kube import KubeClient, Resource
from service_router.gateway_routes import GATEWAY_GROUP, GRPC_ROUTE, HTTP_ROUTE, attached_routes
from service_router.istio import ISTIO_GROUP, discover_virtual_services

log = structlog.get_logger(__name__)

RoutingApi = Literal["auto", "virtualservice", "gateway-api"]
ROUTING_APIS: tuple[RoutingApi, ...] = ("auto", "virtualservice", "gateway-api")
GATEWAY_VERSIONS = ("v1",)


def http_route_resource(version: str = "v1") -> Resource:
    return Resource(group=GATEWAY_GROUP, version=version, plural="httproutes", kind=HTTP_ROUTE)


def grpc_route_resource(version: str = "v1") -> Resource:
    return Resource(group=GATEWAY_GROUP, version=version, plural="grpcroutes", kind=GRPC_ROUTE)


@dataclass(frozen=True)
class RoutingApis:
    """The resources the router uses: None where the API is not served or not allowed by the flag."""

    virtual_services: Resource | None = None
    http_routes: Resource | None = None
    grpc_routes: Resource | None = None

    @property
    def gateway_api(self) -> bool:
        return self.http_routes is not None


def discover_gateway_routes(client: KubeClient) -> tuple[Resource, Resource] | None:
    version = client.server_preferred_version(GATEWAY_GROUP, GATEWAY_VERSIONS)
    return (http_route_resource(version), grpc_route_resource(version)) if version else None


def discover(client: KubeClient, mode: RoutingApi) -> RoutingApis:
    vs = discover_virtual_services(client) if mode != "gateway-api" else None
    gateway = discover_gateway_routes(client) if mode != "virtualservice" else None
    http, grpc = gateway if gateway else (None, None)
    return RoutingApis(virtual_services=vs, http_routes=http, grpc_routes=grpc)


def wait_for_routing_apis(
    client: KubeClient, stop: threading.Event, mode: RoutingApi, *, retry_seconds: float = 5.0
) -> RoutingApis | None:
    """Wait until the server serves an API ``mode`` allows (Istio or the Gateway API may come later)."""
    while not stop.is_set():
        apis = discover(client, mode)
        if apis.virtual_services is not None or apis.gateway_api:
            log.info(
                "routing apis discovered",
                routing_api=mode,
                virtual_services=apis.virtual_services.api_version if apis.virtual_services else None,
                gateway_api=apis.http_routes.api_version if apis.http_routes else None,
            )
            return apis
        groups = {"virtualservice": [ISTIO_GROUP], "gateway-api": [GATEWAY_GROUP]}.get(
            mode, [ISTIO_GROUP, GATEWAY_GROUP]
        )
        log.warning("routing api not served yet; is it installed?", groups=groups, retry_in=retry_seconds)
        stop.wait(retry_seconds)
    return None


def uses_gateway_api(
    mode: RoutingApi, apis: RoutingApis, routes: Iterable[dict[str, Any]], *, origin_service: str, namespace: str
) -> bool:
    """Whether this origin is routed by the Gateway API (else by its VirtualService)."""
    if mode == "gateway-api" or apis.virtual_services is None:
        return apis.gateway_api
    if mode == "virtualservice" or not apis.gateway_api:
        return False
    return bool(attached_routes(routes, service=origin_service, namespace=namespace))
