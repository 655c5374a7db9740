"""``service-router``: run the controller, or one of the read-only helper commands.

``service-router [flags]`` runs the controller: Service, VirtualService and Gateway API route
(HTTPRoute, GRPCRoute) informers enqueue ``namespace/origin`` keys; each key goes to the backend
that routes that origin (``--routing-api``): its VirtualService, or routes derived per clone. The
APIs are discovered from the server (Istio v1, else v1beta1, else v1alpha3; Gateway API v1), and
the router starts with whichever of them is served. ``service-router routes``,
``header`` and ``uninstall`` are helpers for people (see ``--help``). Sharded (``--shard-count``),
the queue accepts only the keys of the namespaces this shard owns (:meth:`Manager.work_queue`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from controller_common import events, metrics
from controller_common.engine import Controller
from controller_common.kube import SERVICES
from controller_common.logging import configure_logging
from controller_common.manager import Manager
from controller_common.startup import check_listen_addresses, kube_client, run_main
from service_router import __version__
from service_router.gateway_api import wait_for_routing_apis
from service_router.gateway_reconcile import (
    GatewayRouteReconciler,
    RoutingDispatch,
    keys_for_gateway_route,
    keys_for_gateway_route_change,
)
from service_router.indexes import CLONE_OF_INDEX, GATEWAY_ROUTE_INDEX, INDEXES, VIRTUAL_SERVICE_INDEX
from service_router.metrics import PREFIX, RouterMetrics
from service_router.reconcile import (
    RouteReconciler,
    keys_for_service,
    keys_for_update,
    keys_for_virtual_service,
    keys_for_virtual_service_change,
)
from service_router.reverts import RevertTracker
from service_router.settings import Settings, parse_settings

log = structlog.get_logger("service-router")

HELPER_COMMANDS = ("routes", "header", "uninstall")


def run(settings: Settings) -> int:
    library = metrics.configure(PREFIX)
    library.build_info(__version__)
    domain = RouterMetrics.create(library)
    process = settings.process
    client = kube_client(process)
    manager = Manager.from_settings(name="service-router", client=client, metrics=library, process=process)
    apis = wait_for_routing_apis(client, manager.stop_event, settings.routing_api)
    if apis is None:
        return 0
    services = manager.informer(SERVICES)
    # Reconciles read by index (service_router.indexes): their cost follows the origin, not the namespace.
    services.add_index(CLONE_OF_INDEX, INDEXES[CLONE_OF_INDEX])
    queue = manager.work_queue("service-router")
    record_event = events.recorder_for(client, "service-router")

    def on_service(_event: str, service: dict[str, Any]) -> None:
        for key in keys_for_service(service):
            queue.add(key)

    def on_updates(keys: Callable[[dict[str, Any]], list[str]]) -> Callable[[dict[str, Any], dict[str, Any]], None]:
        # The old object too: a Service whose origin annotation was removed or changed must reach
        # what the old version named.
        def on_update(old: dict[str, Any], new: dict[str, Any]) -> None:
            for key in keys_for_update(keys, old, new):
                queue.add(key)

        return on_update

    services.on_change(on_service)
    services.on_update(on_updates(keys_for_service))

    vs_reconciler: RouteReconciler | None = None
    vs_resource = apis.virtual_services
    if vs_resource is not None:
        virtual_services = manager.informer(vs_resource)
        virtual_services.add_index(VIRTUAL_SERVICE_INDEX, INDEXES[VIRTUAL_SERVICE_INDEX])
        vs_reconciler = RouteReconciler(
            client=client,
            services=services,
            virtual_services=virtual_services,
            virtual_service_resource=vs_resource,
            record_event=record_event,
            metrics=domain,
            dry_run=process.dry_run,
            reverts=RevertTracker(
                threshold=settings.reverts.threshold,
                window=settings.reverts.window_seconds,
                backoff=settings.reverts.backoff_seconds,
            ),
        )

        def on_virtual_service(event: str, virtual_service: dict[str, Any]) -> None:
            deleted = event == "DELETED"
            keys = (
                keys_for_virtual_service_change(virtual_service, None)
                if deleted
                else keys_for_virtual_service(virtual_service)
            )
            for key in keys:
                queue.add(key)

        def on_virtual_service_update(old: dict[str, Any], new: dict[str, Any]) -> None:
            for key in keys_for_virtual_service_change(old, new):
                queue.add(key)

        virtual_services.on_change(on_virtual_service)
        virtual_services.on_update(on_virtual_service_update)

    gateway_reconciler: GatewayRouteReconciler | None = None
    if apis.http_routes is not None and apis.grpc_routes is not None:
        http_routes = manager.informer(apis.http_routes)
        grpc_routes = manager.informer(apis.grpc_routes)
        for route_informer in (http_routes, grpc_routes):
            route_informer.add_index(GATEWAY_ROUTE_INDEX, INDEXES[GATEWAY_ROUTE_INDEX])
        gateway_reconciler = GatewayRouteReconciler(
            client=client,
            services=services,
            routes={
                apis.http_routes.kind: (apis.http_routes, http_routes),
                apis.grpc_routes.kind: (apis.grpc_routes, grpc_routes),
            },
            record_event=record_event,
            metrics=domain,
            virtual_services=vs_reconciler.virtual_services if vs_reconciler is not None else None,
            dry_run=process.dry_run,
        )

        def on_route(event: str, route: dict[str, Any]) -> None:
            keys = keys_for_gateway_route_change(route, None) if event == "DELETED" else keys_for_gateway_route(route)
            for key in keys:
                queue.add(key)

        def on_route_update(old: dict[str, Any], new: dict[str, Any]) -> None:
            for key in keys_for_gateway_route_change(old, new):
                queue.add(key)

        for informer in (http_routes, grpc_routes):
            informer.on_change(on_route)
            informer.on_update(on_route_update)

    reconciler = RoutingDispatch(
        mode=settings.routing_api, apis=apis, virtual_service=vs_reconciler, gateway=gateway_reconciler
    )
    manager.add_controller(Controller("service-router", reconcile=reconciler, queue=queue, workers=process.workers))
    return int(manager.run())


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in HELPER_COMMANDS:
        from service_router.cli import run_helper

        return run_helper(args)
    return int(run_main(lambda: start(args), name="service-router"))


def start(args: list[str]) -> int:
    """Configuration mistakes found before the workers start end in one log line and their exit code."""
    settings = parse_settings(args)
    configure_logging(level=settings.process.log_level, json=settings.process.log_json)
    log.info("starting", version=__version__, config=settings.redacted())
    process = settings.process
    check_listen_addresses(
        {
            "--metrics-bind-address": process.metrics_bind_address,
            "--health-probe-bind-address": process.health_probe_bind_address,
        }
    )
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
