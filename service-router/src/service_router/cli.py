"""Helper commands for people: ``service-router routes``, ``header`` and ``uninstall``.

``routes`` answers "which PR environments can I reach, with which header, and are they up?" from
the cluster itself: the clone Services, the routes that stand in the VirtualServices, and whether
a Deployment behind each clone has an available replica. ``uninstall`` is the one that writes:
it removes the router's routes, VirtualServices and finalizers (see :mod:`service_router.uninstall`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from controller_common import contract, errors, objects
from controller_common.kube import DEPLOYMENTS, SERVICES, KubeClient
from service_router.istio import discover_virtual_services
from service_router.routes import is_managed_route
from service_router.uninstall import run_uninstall

ROUTES_COLUMNS = ("NAMESPACE", "ORIGIN", "HEADER", "VALUE", "CLONE", "READY", "ROUTES")


def routes_table(
    services: Sequence[dict[str, Any]],
    virtual_services: Sequence[dict[str, Any]],
    deployments: Sequence[dict[str, Any]] | None,
    *,
    origin: str | None = None,
) -> list[tuple[str, ...]]:
    """Rows of :data:`ROUTES_COLUMNS`, one per clone Service (pure, for tests and the command)."""
    route_names: dict[str, list[str]] = {}
    for vs in virtual_services:
        for route in (vs.get("spec") or {}).get("http") or []:
            if is_managed_route(route, vs_namespace=objects.namespace(vs) or ""):
                route_names.setdefault(objects.namespace(vs) or "", []).append(str(route.get("name")))
    rows: list[tuple[str, ...]] = []
    for service in sorted(services, key=lambda s: (objects.namespace(s) or "", objects.name(s))):
        origin_name = objects.annotations(service).get(contract.ORIGIN_SERVICE_ANNOTATION)
        if not origin_name or (origin and origin_name != origin):
            continue
        namespace, clone = objects.namespace(service) or "", objects.name(service)
        prefix = contract.managed_route_name(clone)
        names = [n for n in route_names.get(namespace, []) if n == prefix or n.startswith(prefix + "--")]
        rows.append(
            (
                namespace,
                origin_name,
                contract.routing_header(origin_name, namespace),
                contract.routing_value(clone, namespace),
                clone,
                _readiness(service, deployments),
                ",".join(names) or "-",
            )
        )
    return rows


def _readiness(service: dict[str, Any], deployments: Sequence[dict[str, Any]] | None) -> str:
    if deployments is None:
        return "unknown"
    if objects.is_being_deleted(service):
        return "deleting"
    selector = (service.get("spec") or {}).get("selector") or {}
    for deployment in deployments:
        if objects.namespace(deployment) != objects.namespace(service):
            continue
        pod_labels = ((deployment.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
        if objects.selector_matches_labels(selector, pod_labels):
            available = int((deployment.get("status") or {}).get("availableReplicas") or 0)
            return "yes" if available > 0 else "no"
    return "no"


def format_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in [columns, *rows]]
    return "\n".join(lines)


def _routes(args: argparse.Namespace) -> int:
    client = KubeClient.from_environment(args.kubeconfig)
    namespace = args.namespace
    services, _ = client.list(SERVICES, namespace)
    vs_resource = discover_virtual_services(client)
    virtual_services = client.list(vs_resource, namespace)[0] if vs_resource else []
    try:
        deployments: list[dict[str, Any]] | None = client.list(DEPLOYMENTS, namespace)[0]
    except errors.Forbidden:
        deployments = None
    rows = routes_table(services, virtual_services, deployments, origin=args.origin)
    print(format_table(ROUTES_COLUMNS, rows) if rows else "no pull-request routes")
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    client = KubeClient.from_environment(args.kubeconfig)
    return run_uninstall(client, discover_virtual_services(client), namespace=args.namespace, dry_run=args.dry_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="service-router", description="Helper commands of the service-router.")
    commands = parser.add_subparsers(dest="command", required=True)
    routes = commands.add_parser("routes", help="table of origins, header values, clones and their routes")
    routes.add_argument("origin", nargs="?", help="only this origin Service")
    routes.add_argument("-n", "--namespace", help="only this namespace (default: all)")
    routes.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, then in-cluster)")
    routes.set_defaults(handler=_routes)
    uninstall = commands.add_parser(
        "uninstall",
        help="remove every managed route, the VirtualServices the router created, and its finalizers "
        "(stop the router first)",
        description="Remove every managed route (service-router--*), the VirtualServices the router created "
        "and its finalizer on Services, in that order. Stop the router first, or it puts them back: "
        "kubectl -n <namespace> scale deployment/service-router --replicas=0. Run with --dry-run to see the steps.",
    )
    uninstall.add_argument("-n", "--namespace", help="only this namespace (default: all)")
    uninstall.add_argument("--dry-run", action="store_true", help="print the steps, change nothing")
    uninstall.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, then in-cluster)")
    uninstall.set_defaults(handler=_uninstall)
    try:
        from service_router.header_cli import add_header_command
    except ImportError:  # the header helper ships separately; routes works without it
        pass
    else:
        add_header_command(commands)
    return parser


def run_helper(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except errors.ApiError as exc:
        print(f"error: {exc}")
        return 1
