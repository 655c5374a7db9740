"""Bad input from outside, against the router as a process (issue 15, items 4-6).

- A Service whose origin annotation is removed loses its route and the router's finalizer at once
  (not at a resync: every wait here is shorter than the 30 s resync period), so its deletion is not
  held up; the same holds when the annotation is removed while the router is down (level-based). A
  retargeted clone leaves the old origin's VirtualService and joins the new one's.
- A route merely named like the router's is someone else's: never changed or removed.
- An origin annotation that names no Service (``ghost``, ``frontend.shop``) gets a Warning Event
  ``OriginNotFound`` and a count, and nothing is written; once the Service appears, it is routed.
"""

from __future__ import annotations

import pytest
from e2e.router_support import Router, create_clone, event_reasons, route_names, service, virtual_service
from invariants import Expectations, assert_invariants, snapshot

from controller_common import contract
from controller_common.kube import SERVICES
from e2e_support import wait_until
from world import VIRTUAL_SERVICES, World

pytestmark = pytest.mark.e2e

ORIGIN = "echo"
NS = "default"
WAIT = 10.0  # well under the router's 30 s resync: the event itself must do it
ROUTER_ONLY = Expectations(controllers=("service-router",))


def _seed(world: World, name: str = ORIGIN) -> None:
    world.seed_origin(name, repository=f"mercari/{name}", image=f"ghcr.io/mercari/{name}:1")


def _finalizers(world: World, name: str) -> list[str]:
    found = service(world, name)
    assert found is not None, name
    return list(found["metadata"].get("finalizers") or [])


def _routed(world: World, origin: str, clone: str) -> bool:
    return contract.managed_route_name(clone) in route_names(world, origin) and contract.ROUTER_FINALIZER in (
        _finalizers(world, clone)
    )


def _set_origin(world: World, clone: str, origin: str | None) -> None:
    world.client.patch(SERVICES, NS, clone, {"metadata": {"annotations": {contract.ORIGIN_SERVICE_ANNOTATION: origin}}})


def _delete_and_wait_gone(world: World, name: str) -> None:
    world.client.delete(SERVICES, NS, name)
    wait_until(lambda: service(world, name) is None, timeout=WAIT, message=f"Service {name} deletion completes")


def test_an_origin_annotation_removed_releases_the_route_and_the_finalizer_at_once(world: World) -> None:
    _seed(world)
    Router(world).start()
    create_clone(world, "echo-pr1", ORIGIN)
    wait_until(lambda: _routed(world, ORIGIN, "echo-pr1"), timeout=WAIT, message="routed, with the finalizer")

    _set_origin(world, "echo-pr1", None)

    wait_until(
        lambda: (
            route_names(world, ORIGIN) == ["default"]
            and contract.ROUTER_FINALIZER not in _finalizers(world, "echo-pr1")
        ),
        timeout=WAIT,
        message="route gone and finalizer released",
    )
    _delete_and_wait_gone(world, "echo-pr1")
    assert "Unrouted" in event_reasons(world, "echo-pr1")


def test_an_origin_annotation_removed_while_the_router_is_down_is_found_after_the_restart(world: World) -> None:
    _seed(world)
    router = Router(world).start()
    create_clone(world, "echo-pr1", ORIGIN)
    wait_until(lambda: _routed(world, ORIGIN, "echo-pr1"), timeout=WAIT, message="routed, with the finalizer")
    router.stop()

    _set_origin(world, "echo-pr1", None)
    world.client.delete(SERVICES, NS, "echo-pr1")
    held = service(world, "echo-pr1")
    assert held is not None and held["metadata"].get("deletionTimestamp")

    Router(world).start()
    wait_until(lambda: service(world, "echo-pr1") is None, timeout=WAIT, message="deletion completes after restart")
    assert route_names(world, ORIGIN) == ["default"]


def test_a_retargeted_clone_leaves_the_old_origins_routes_and_its_deletion_leaves_no_route(world: World) -> None:
    _seed(world)
    _seed(world, "billing")
    untouched = snapshot(world)
    Router(world).start()
    create_clone(world, "echo-pr1", ORIGIN)
    wait_until(lambda: _routed(world, ORIGIN, "echo-pr1"), timeout=WAIT, message="routed under echo")

    _set_origin(world, "echo-pr1", "billing")
    wait_until(
        lambda: route_names(world, ORIGIN) == ["default"] and _routed(world, "billing", "echo-pr1"),
        timeout=WAIT,
        message="moved from echo's VirtualService to billing's",
    )

    _delete_and_wait_gone(world, "echo-pr1")
    assert route_names(world, "billing") == ["default"]
    assert route_names(world, ORIGIN) == ["default"]
    assert_invariants(world, untouched, ROUTER_ONLY)


def test_a_route_merely_named_like_the_routers_is_never_touched(world: World) -> None:
    _seed(world)
    host = contract.service_host(ORIGIN, NS)
    lookalike = {"name": "service-router--mine", "timeout": "3s", "route": [{"destination": {"host": host}}]}
    vs = virtual_service(world, ORIGIN)
    assert vs is not None
    vs["spec"]["http"].insert(0, lookalike)
    world.client.replace(VIRTUAL_SERVICES, vs)
    untouched = snapshot(world)
    router = Router(world).start()
    # A router that has reconciled the origin (and so seen the look-alike) since it started:
    router.settle(lambda: create_clone(world, "unrelated-pr1", "unrelated"))
    wait_until(lambda: router.reconciles() >= 2, timeout=WAIT, message="echo reconciled at start-up")

    assert route_names(world, ORIGIN) == ["service-router--mine", "default"]
    assert router.writes() == []
    assert_invariants(world, untouched, ROUTER_ONLY)


@pytest.mark.parametrize("origin", ["ghost", "frontend.shop"], ids=["no-such-service", "not-a-service-name"])
def test_an_origin_that_is_not_a_service_is_a_warning_and_nothing_is_written(world: World, origin: str) -> None:
    untouched = snapshot(world)
    router = Router(world).start()
    create_clone(world, "echo-pr1", origin)

    wait_until(
        lambda: "OriginNotFound" in event_reasons(world, "echo-pr1"),
        timeout=WAIT,
        message="OriginNotFound Event on the clone",
    )
    assert router.metric("service_router_skipped_total", namespace=NS, reason="origin_not_found") >= 1
    assert router.writes() == []
    assert router.writes(SERVICES.plural) == []
    assert world.client.list(VIRTUAL_SERVICES, NS)[0] == []
    assert "Routed" not in event_reasons(world, "echo-pr1")
    assert_invariants(world, untouched, ROUTER_ONLY)


def test_an_origin_that_appears_after_its_clone_gets_it_routed(world: World) -> None:
    untouched = snapshot(world)
    Router(world).start()
    create_clone(world, "ghost-pr1", "ghost")
    wait_until(lambda: "OriginNotFound" in event_reasons(world, "ghost-pr1"), timeout=WAIT, message="warned")

    world.client.create(
        SERVICES,
        {"metadata": {"name": "ghost", "namespace": NS}, "spec": {"ports": [{"port": 80}], "selector": {"app": "g"}}},
    )

    wait_until(lambda: _routed(world, "ghost", "ghost-pr1"), timeout=WAIT, message="routed once the origin exists")
    assert "Routed" in event_reasons(world, "ghost-pr1")
    assert_invariants(world, untouched, ROUTER_ONLY)
