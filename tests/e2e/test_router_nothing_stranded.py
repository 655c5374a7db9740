"""Nothing stranded: a clone Service deleted while the router is down, and an uninstall.

The router's finalizer holds a deleted clone Service until its route is gone, even when the
router was not running at the time: restarted, its start-up resync removes the route (and any
managed route whose Service is gone), restores a route removed by hand meanwhile, then lets the
Service go.
``service-router routes`` shows what stands; ``service-router uninstall`` takes out every managed
route, the VirtualServices the router created and its finalizers (``--dry-run`` changes nothing).
"""

from __future__ import annotations

import pytest
from e2e.router_support import Router, create_clone, event_reasons, route_names, service, virtual_service
from invariants import Expectations, assert_invariants, snapshot

from controller_common import contract
from controller_common.kube import SERVICES
from e2e_support import wait_until
from istio_schema import istio_errors
from shared_data import find_shared_dir
from world import VIRTUAL_SERVICES, World

pytestmark = pytest.mark.e2e

ORIGIN = "echo"
BARE = "bare"  # an origin without a VirtualService: the router creates one


def _finalizers(world: World, name: str) -> list[str]:
    found = service(world, name)
    assert found is not None, name
    return list(found["metadata"].get("finalizers") or [])


def test_a_clone_deleted_while_the_router_is_down_loses_its_route_then_the_uninstall(world: World) -> None:
    world.seed_origin(ORIGIN, repository="mercari/echo", image="ghcr.io/mercari/echo:1")
    world.client.create(
        SERVICES,
        {
            "metadata": {"name": BARE, "namespace": "default"},
            "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}},
        },
    )
    untouched = snapshot(world)
    router = Router(world).start()
    create_clone(world, "echo-pr1", ORIGIN)
    create_clone(world, "echo-pr2", ORIGIN)
    both = ["service-router--echo-pr1", "service-router--echo-pr2", "default"]
    wait_until(
        lambda: (
            route_names(world, ORIGIN) == both
            and contract.ROUTER_FINALIZER in _finalizers(world, "echo-pr1")
            and contract.ROUTER_FINALIZER in _finalizers(world, "echo-pr2")
        ),
        timeout=15,
        message="routed, with the finalizers",
    )

    # The router is down while the clone Service is deleted: the finalizer holds it, the route stays.
    router.stop()
    world.client.delete(SERVICES, "default", "echo-pr1")
    held = service(world, "echo-pr1")
    assert held is not None and held["metadata"].get("deletionTimestamp")
    assert route_names(world, ORIGIN) == both
    # Meanwhile someone drops the route of echo-pr2 by hand, and a managed route for a Service that
    # no longer exists at all turns up (a restored backup).
    stray = virtual_service(world, ORIGIN)
    assert stray is not None
    stray["spec"]["http"] = [r for r in stray["spec"]["http"] if r["name"] != "service-router--echo-pr2"]
    stray["spec"]["http"].insert(
        0,
        {
            "name": "service-router--echo-pr9",
            "match": [{"headers": {contract.routing_header(ORIGIN, "default"): {"exact": "echo-pr9.default"}}}],
            "route": [{"destination": {"host": "echo-pr9.default.svc.cluster.local"}}],
        },
    )
    world.client.replace(VIRTUAL_SERVICES, stray)

    # Restarted, the router's start-up resync removes both stale routes, restores the missing one,
    # and only then releases the deleted Service.
    router.start()
    wait_until(
        lambda: service(world, "echo-pr1") is None and route_names(world, ORIGIN) == both[1:],
        timeout=15,
        message="stale routes removed, the missing one restored, then the Service gone",
    )

    # What stands, as a person sees it.
    create_clone(world, "bare-pr3", BARE)
    wait_until(
        lambda: (
            route_names(world, ORIGIN)[:1] == ["service-router--echo-pr2"]
            and route_names(world, BARE) == ["service-router--bare-pr3", "default"]
        ),
        timeout=15,
        message="two origins routed, one VirtualService created",
    )
    wait_until(lambda: "Routed" in event_reasons(world, "bare-pr3"), timeout=10, message="Routed event")
    created = virtual_service(world, BARE)
    assert created is not None
    assert created["metadata"]["labels"][contract.MANAGED_BY_LABEL] == contract.SERVICE_ROUTER_MANAGER
    shared = find_shared_dir()
    if shared is not None:
        assert istio_errors({k: v for k, v in created.items() if k != "status"}, shared) == []
    table = router.helper("routes", "-n", "default", ORIGIN)
    assert table.returncode == 0, table.stderr
    rows = [line.split() for line in table.stdout.splitlines()]
    assert rows[0][:3] == ["NAMESPACE", "ORIGIN", "HEADER"]
    assert rows[1:] == [
        [
            "default",
            ORIGIN,
            "service-router-echo-default",
            "echo-pr2.default",
            "echo-pr2",
            "no",
            "service-router--echo-pr2",
        ]
    ]
    assert_invariants(world, untouched, Expectations(controllers=("service-router",)))

    # Uninstall: the router stopped first; a dry run changes nothing, the real run removes it all.
    router.stop()
    before = len([r for r in world.kube.request_log if r.is_write])
    dry = router.helper("uninstall", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("(dry run)") == 4, dry.stdout  # echo routes, bare VS, two finalizers
    assert len([r for r in world.kube.request_log if r.is_write]) == before

    done = router.helper("uninstall")
    assert done.returncode == 0, done.stdout + done.stderr
    assert route_names(world, ORIGIN) == ["default"]
    assert virtual_service(world, BARE) is None
    assert contract.ROUTER_FINALIZER not in _finalizers(world, "echo-pr2")
    assert contract.ROUTER_FINALIZER not in _finalizers(world, "bare-pr3")
    world.client.delete(SERVICES, "default", "echo-pr2")
    assert service(world, "echo-pr2") is None  # nothing holds it any more
    assert router.helper("uninstall").stdout.strip() == "nothing to remove"
