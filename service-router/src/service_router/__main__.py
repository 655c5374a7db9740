"""``service-router``: run the controller, or one of the read-only helper commands.

``service-router [flags]`` runs the controller: Service and VirtualService informers enqueue
``namespace/origin`` keys; one reconciler converges each origin's VirtualService. The Istio API
version is discovered from the server (v1, else v1beta1, else v1alpha3). ``service-router routes``,
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
from service_router.istio import wait_for_virtual_services
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
    vs_resource = wait_for_virtual_services(client, manager.stop_event)
    if vs_resource is None:
        return 0
    services = manager.informer(SERVICES)
    virtual_services = manager.informer(vs_resource)
    queue = manager.work_queue("service-router")

    reconciler = RouteReconciler(
        client=client,
        services=services,
        virtual_services=virtual_services,
        virtual_service_resource=vs_resource,
        record_event=events.recorder_for(client, "service-router"),
        metrics=domain,
        dry_run=process.dry_run,
        reverts=RevertTracker(
            threshold=settings.reverts.threshold,
            window=settings.reverts.window_seconds,
            backoff=settings.reverts.backoff_seconds,
        ),
    )

    def on_service(_event: str, service: dict[str, Any]) -> None:
        for key in keys_for_service(service):
            queue.add(key)

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

    def on_updates(keys: Callable[[dict[str, Any]], list[str]]) -> Callable[[dict[str, Any], dict[str, Any]], None]:
        # The old object too: a Service whose origin annotation was removed or changed must reach
        # what the old version named.
        def on_update(old: dict[str, Any], new: dict[str, Any]) -> None:
            for key in keys_for_update(keys, old, new):
                queue.add(key)

        return on_update

    services.on_change(on_service)
    services.on_update(on_updates(keys_for_service))
    virtual_services.on_change(on_virtual_service)
    virtual_services.on_update(on_virtual_service_update)
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
