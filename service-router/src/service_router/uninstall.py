"""Take the router out of a cluster without stranding anything: ``service-router uninstall``.

Stop the router first (scale its Deployment to 0), or it puts back what this removes. Then:
every route the router provably wrote (``cloning.route_owner``: name, routing header and
destination, not the name prefix alone) leaves every VirtualService it is in,
VirtualServices the router created (managed-by label) are deleted when nothing but their default
route to the origin is left, and the router's finalizer leaves every Service — in that order, so
no Service can go while a route still points at it.

Guarantees: routes the router did not provably write, and VirtualServices without our label, are never
removed; every write carries the observed ``resourceVersion`` (a concurrent change fails the
step, and running the command again finishes the job); ``--dry-run`` prints the same steps and
writes nothing. The plan is pure (:func:`plan_uninstall`), the execution is :func:`run_uninstall`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from controller_common import contract, errors, objects
from controller_common.kube import SERVICES, KubeClient, Resource
from service_router.cloning import is_managed_route
from service_router.routes import DEFAULT_ROUTE_NAME, is_owned


@dataclass(frozen=True)
class UninstallStep:
    action: Literal["update", "delete", "release"]
    """update: write the VirtualService without managed routes; delete: our own VirtualService;
    release: remove the router's finalizer from a Service."""
    obj: dict[str, Any]
    detail: str

    def describe(self) -> str:
        kind = "service" if self.action == "release" else "virtualservice"
        return f"{kind} {objects.object_key(self.obj)}: {self.detail}"


def _routes(virtual_service: dict[str, Any]) -> list[dict[str, Any]]:
    return list((virtual_service.get("spec") or {}).get("http") or [])


def plan_uninstall(
    virtual_services: Sequence[dict[str, Any]], services: Sequence[dict[str, Any]]
) -> list[UninstallStep]:
    """The steps, VirtualServices first, then finalizers; inputs are not mutated."""
    steps: list[UninstallStep] = []
    for vs in sorted(virtual_services, key=objects.object_key):
        http = _routes(vs)
        vs_namespace = objects.namespace(vs) or ""
        managed = [str(r.get("name")) for r in http if is_managed_route(r, vs_namespace=vs_namespace)]
        kept = [r for r in http if not is_managed_route(r, vs_namespace=vs_namespace)]
        if is_owned(vs) and all(r.get("name") == DEFAULT_ROUTE_NAME for r in kept):
            steps.append(UninstallStep("delete", vs, "delete (created by the service-router)"))
        elif managed:
            updated = copy.deepcopy(vs)
            if kept:
                updated["spec"]["http"] = copy.deepcopy(kept)
            else:
                updated["spec"].pop("http", None)
            steps.append(UninstallStep("update", updated, f"remove routes {', '.join(managed)}"))
    for service in sorted(services, key=objects.object_key):
        if objects.has_finalizer(service, contract.ROUTER_FINALIZER):
            steps.append(UninstallStep("release", service, f"remove finalizer {contract.ROUTER_FINALIZER}"))
    return steps


def run_uninstall(
    client: KubeClient,
    virtual_service_resource: Resource | None,
    *,
    namespace: str | None = None,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> int:
    """Plan from a fresh read and execute (or only print, with ``dry_run``); the exit code."""
    virtual_services = client.list(virtual_service_resource, namespace)[0] if virtual_service_resource else []
    services = client.list(SERVICES, namespace)[0]
    steps = plan_uninstall(virtual_services, services)
    if not steps:
        echo("nothing to remove")
        return 0
    failed = 0
    for step in steps:
        if dry_run:
            echo(f"{step.describe()} (dry run)")
            continue
        if step.action == "release" and failed:
            # A route may still point at this Service: keep the finalizer until a rerun succeeds.
            echo(f"{step.describe()}: skipped (a VirtualService step failed)")
            continue
        try:
            _execute(client, virtual_service_resource, step)
        except errors.NotFound:
            echo(f"{step.describe()}: already gone")
        except errors.ApiError as exc:
            failed += 1
            echo(f"{step.describe()}: FAILED: {exc}")
        else:
            echo(f"{step.describe()}: done")
    if failed:
        echo(f"{failed} step(s) failed; run the command again (is the service-router still running?)")
        return 1
    return 0


def _execute(client: KubeClient, resource: Resource | None, step: UninstallStep) -> None:
    obj = step.obj
    namespace, name = objects.namespace(obj), objects.name(obj)
    rv = objects.resource_version(obj)
    if step.action == "release":
        finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != contract.ROUTER_FINALIZER]
        client.patch(SERVICES, namespace, name, {"metadata": {"finalizers": finalizers, "resourceVersion": rv}})
        return
    assert resource is not None  # VirtualService steps exist only when the server serves them
    if step.action == "delete":
        client.delete(resource, namespace, name, preconditions={"resourceVersion": rv})
    else:
        client.replace(resource, obj)
