"""Helper commands for people: ``service-router routes``, ``header`` and ``uninstall``.

``routes`` answers "which PR environments can I reach, with which header, and are they up?" from
the cluster itself: the clone Services, the routes that stand in the VirtualServices, and whether
a Deployment behind each clone has an available replica (``-o json|yaml`` for scripts).
``uninstall`` is the one that writes: it removes the router's routes, VirtualServices and
finalizers (see :mod:`service_router.uninstall`).

The same commands ship as the kubectl plugin ``kubectl-service_router`` (kubectl runs it for
``kubectl service-router ...``), the ecosystem's convention for a controller's helpers.
"""

from __future__ import annotations

import argparse
import json
import sys
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


def routes_document(rows: Sequence[Sequence[str]]) -> dict[str, Any]:
    """``-o json|yaml``: a kubectl-style list, one item per clone, ``routes`` as a list."""
    items = []
    for namespace, origin, header, value, clone, ready, routes in rows:
        items.append(
            {
                "namespace": namespace,
                "origin": origin,
                "header": header,
                "value": value,
                "clone": clone,
                "ready": ready,
                "routes": [] if routes == "-" else routes.split(","),
            }
        )
    return {"kind": "List", "items": items}


def _print_document(document: dict[str, Any], output: str) -> None:
    if output == "json":
        print(json.dumps(document, indent=2))
        return
    import yaml  # PyYAML comes with the kubernetes client

    sys.stdout.write(yaml.safe_dump(document, sort_keys=False))


def _routes(args: argparse.Namespace) -> int:
    client = KubeClient.from_environment(args.kubeconfig, args.context)
    namespace = None if args.all_namespaces else args.namespace
    services, _ = client.list(SERVICES, namespace)
    vs_resource = discover_virtual_services(client)
    virtual_services = client.list(vs_resource, namespace)[0] if vs_resource else []
    try:
        deployments: list[dict[str, Any]] | None = client.list(DEPLOYMENTS, namespace)[0]
    except errors.Forbidden:
        deployments = None
    rows = routes_table(services, virtual_services, deployments, origin=args.origin)
    if args.output != "table":
        _print_document(routes_document(rows), args.output)
    else:
        print(format_table(ROUTES_COLUMNS, rows) if rows else "no pull-request routes")
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    client = KubeClient.from_environment(args.kubeconfig, args.context)
    return run_uninstall(client, discover_virtual_services(client), namespace=args.namespace, dry_run=args.dry_run)


def _cluster_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, then in-cluster)")
    parser.add_argument("--context", help="kubeconfig context (default: the current context)")


def build_parser(prog: str = "service-router") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Helper commands of the service-router.")
    commands = parser.add_subparsers(dest="command", required=True)
    routes = commands.add_parser("routes", help="table of origins, header values, clones and their routes")
    routes.add_argument("origin", nargs="?", help="only this origin Service")
    scope = routes.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="only this namespace (default: all)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace (the default)")
    routes.add_argument(
        "-o", "--output", choices=("table", "json", "yaml"), default="table", help="output format (default: table)"
    )
    _cluster_flags(routes)
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
    _cluster_flags(uninstall)
    uninstall.set_defaults(handler=_uninstall)
    try:
        from service_router.header_cli import add_header_command
    except ImportError:  # the header helper ships separately; routes works without it
        pass
    else:
        add_header_command(commands)
    return parser


def run_helper(argv: Sequence[str], *, prog: str = "service-router") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        return int(args.handler(args))
    except errors.ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def kubectl_plugin(argv: Sequence[str] | None = None) -> int:
    """The console script ``kubectl-service_router``: ``kubectl service-router routes -A -o json``."""
    return run_helper(sys.argv[1:] if argv is None else argv, prog="kubectl service-router")
