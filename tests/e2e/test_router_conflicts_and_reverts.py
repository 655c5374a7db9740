"""The service-router process against the emulated API server: it never fights and never overwrites.

A router-only world (clone Services created as the replicator would). Conflicts injected into its
writes still converge, and leave the origin's own routes as they were; a stale header falls
through to the origin; in a steady state nothing is written; a hand edit that removes our route
is repaired; a writer that keeps undoing our routes (a GitOps tool) is noticed, reported and
left alone for a while instead of being fought in a hot loop. Every VirtualService the router
wrote validates against Istio's CRD.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from e2e.router_support import Router, create_clone, event_reasons, route_names, virtual_service
from invariants import Expectations, assert_invariants, snapshot

from controller_common import contract, errors
from controller_common.kube import SERVICES, KubeClient
from e2e_support import wait_until
from evaluate_support import route_request
from istio_schema import istio_errors
from shared_data import find_shared_dir
from world import VIRTUAL_SERVICES, World

pytestmark = pytest.mark.e2e

ORIGIN = "echo"
CLONE = "echo-pr1"
ROUTE = contract.managed_route_name(CLONE)
HEADER = contract.routing_header(ORIGIN, "default")


def _validate(vs: dict[str, Any] | None) -> None:
    assert vs is not None
    shared = find_shared_dir()
    if shared is not None:
        assert istio_errors({k: v for k, v in vs.items() if k != "status"}, shared) == []


def _without_our_routes(vs: dict[str, Any]) -> dict[str, Any]:
    vs["spec"]["http"] = [r for r in vs["spec"]["http"] if not r["name"].startswith(contract.MANAGED_ROUTE_PREFIX)]
    return vs


def _touch(world: World, name: str, value: str) -> None:
    world.client.patch(SERVICES, world.namespace, name, {"metadata": {"labels": {"touched": value}}})


class RevertingWriter:
    """Another writer that owns the VirtualService and puts its own version back whenever it changes."""

    def __init__(self, world: World) -> None:
        kubeconfig = world.kube.write_kubeconfig(world.workdir / "gitops-kubeconfig", token="gitops")
        self.client = KubeClient.from_environment(str(kubeconfig))
        self.namespace = world.namespace
        self.reverts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RevertingWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.client.close()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            vs = self.client.get(VIRTUAL_SERVICES, self.namespace, ORIGIN)
            if any(r["name"].startswith(contract.MANAGED_ROUTE_PREFIX) for r in vs["spec"]["http"]):
                try:
                    self.client.replace(VIRTUAL_SERVICES, _without_our_routes(vs))
                    self.reverts += 1
                except errors.Conflict:
                    continue


def test_router_converges_through_conflicts_and_does_not_fight_a_reverting_writer(world: World) -> None:
    world.seed_origin(ORIGIN, repository="mercari/echo", image="ghcr.io/mercari/echo:1")
    origin_routes = virtual_service(world, ORIGIN)["spec"]["http"]  # type: ignore[index]
    untouched = snapshot(world)
    router = Router(world, extra=("--revert-threshold", "3", "--revert-backoff", "600")).start()

    # 1. Conflicts injected into the router's writes: it re-reads, re-plans and still converges.
    fault = world.kube.faults.inject(verb="update", resource="virtualservices", status=409, times=2)
    create_clone(world, CLONE, ORIGIN)
    wait_until(lambda: route_names(world, ORIGIN) == [ROUTE, "default"], timeout=15, message="routed despite 409s")
    assert fault.hits == 2
    assert [r.status for r in router.writes(verb="update")][:3] == [409, 409, 200]
    assert router.metric("service_router_conflicts_total") >= 2
    vs = virtual_service(world, ORIGIN)
    assert vs is not None
    assert vs["spec"]["http"][-1:] == origin_routes  # the origin's own route, untouched
    _validate(vs)

    # 2. Header routing as Istio evaluates it: the clone, the origin, and a stale header to the origin.
    assert route_request(vs, host=ORIGIN, headers={HEADER: f"{CLONE}.default"}) == CLONE
    assert route_request(vs, host=ORIGIN, headers={}) == ORIGIN
    assert route_request(vs, host=ORIGIN, headers={HEADER: "echo-pr99.default"}) == ORIGIN
    assert route_request(vs, host=ORIGIN, headers={HEADER: f"{CLONE}.staging"}) == ORIGIN

    # 3. Steady state: looking again writes nothing.
    writes = len(router.writes())
    router.settle(lambda: _touch(world, CLONE, "1"))
    assert len(router.writes()) == writes

    # 4. A hand edit that removes our route is repaired.
    world.client.replace(VIRTUAL_SERVICES, _without_our_routes(virtual_service(world, ORIGIN)))  # type: ignore[arg-type]
    wait_until(lambda: route_names(world, ORIGIN) == [ROUTE, "default"], timeout=15, message="hand edit repaired")
    assert router.metric("service_router_reverts_detected_total", namespace="default", origin=ORIGIN) == 1
    _validate(virtual_service(world, ORIGIN))
    # Converged again (what follows backs off on purpose, leaving the clone unrouted).
    assert_invariants(world, untouched, Expectations(controllers=("service-router",)))

    # 5. A writer that keeps undoing our routes: detected, reported, and then left alone.
    with RevertingWriter(world) as gitops:
        wait_until(
            lambda: router.metric("service_router_revert_backoffs_total", namespace="default", origin=ORIGIN) >= 1,
            timeout=20,
            message="router noticed the fight and backed off",
        )
        wait_until(lambda: "RoutesReverted" in event_reasons(world, CLONE), timeout=10, message="warning event")
        backed_off_at = len(router.writes(verb="update"))
        reverts_seen = gitops.reverts
        # However often the router looks again, it does not write while backing off.
        for i in range(3):
            router.settle(lambda i=i: _touch(world, CLONE, f"again-{i}"))
        assert len(router.writes(verb="update")) == backed_off_at
        assert gitops.reverts == reverts_seen
    # Bounded: 2 conflicts + the first write + the repaired hand edit + at most threshold-1 restores.
    assert backed_off_at <= 2 + 1 + 1 + 2
    assert route_names(world, ORIGIN) == ["default"]
    assert router.process is not None and router.process.running
