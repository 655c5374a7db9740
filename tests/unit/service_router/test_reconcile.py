"""The router's reconcile against the emulated API server: conflicts, finalizers, reverts, events."""

from __future__ import annotations

import pytest

from controller_common import contract, errors
from controller_common.kube import SERVICES

from .conftest import NS, ORIGIN, Rig

CLONE = "echo-pr1"
ROUTE = contract.managed_route_name(CLONE)


def test_conflicts_are_retried_from_a_fresh_read_and_converge(rig: Rig) -> None:
    rig.origin()
    rig.clone(CLONE)
    rig.server.faults.inject(verb="update", resource="virtualservices", status=409, times=2)

    rig.reconcile()

    assert rig.route_names() == [ROUTE, "default"]
    assert rig.counter("service_router_conflicts_total") == 2
    updates = [r for r in rig.vs_writes() if r.verb == "update"]
    assert [r.status for r in updates] == [409, 409, 200]
    # Between the conflicts and the next write, the VirtualServices were read from the server.
    log = rig.server.request_log
    first_conflict = log.index(updates[0])
    assert any(r.verb == "list" and r.resource == "virtualservices" for r in log[first_conflict:])


def test_conflicts_beyond_the_bound_are_handed_to_the_queue(rig: Rig) -> None:
    rig.origin()
    rig.clone(CLONE)
    rig.server.faults.inject(verb="update", resource="virtualservices", status=409)

    with pytest.raises(errors.TransientError):
        rig.reconcile()

    assert len([r for r in rig.vs_writes() if r.verb == "update"]) == rig.reconciler.max_write_attempts
    assert rig.route_names() == ["default"]
    assert "WriteConflict" in rig.reasons(CLONE)
    assert errors.is_transient(errors.TransientError())


def test_a_stale_cache_never_overwrites_another_writers_change(lagging_rig: Rig) -> None:
    rig = lagging_rig
    rig.origin()
    rig.clone(CLONE)
    rig.refresh()
    # Someone adds a route of their own after our cache was filled.
    vs = rig.vs()
    vs["spec"]["http"].insert(
        0,
        {
            "name": "canary",
            "match": [{"uri": {"prefix": "/canary"}}],
            "route": [{"destination": {"host": "canary.default.svc.cluster.local"}}],
        },
    )
    rig.client.replace(rig.resource, vs)

    rig.reconcile()

    assert rig.route_names() == ["canary", ROUTE, "default"]
    assert rig.counter("service_router_conflicts_total") == 1


def test_nothing_is_written_when_the_routes_already_stand(rig: Rig) -> None:
    rig.origin()
    rig.clone(CLONE)
    rig.reconcile()
    writes = len(rig.vs_writes())

    rig.reconcile()
    rig.reconcile()

    assert len(rig.vs_writes()) == writes
    assert rig.reasons(CLONE).count("Routed") == 1


def test_a_restarted_router_records_no_event_for_routes_that_already_stand(rig: Rig) -> None:
    rig.origin()
    rig.clone(CLONE)
    rig.reconcile()
    assert rig.reasons(CLONE) == ["Routed"]
    rig.__post_init__()  # a new process: a reconciler with no memory of what it reported
    rig.clone("echo-pr2")
    rig.reconcile()
    assert rig.reasons(CLONE) == ["Routed"], "the route stood before: nothing new to tell"
    assert rig.reasons("echo-pr2") == ["Routed"], "a route this process wrote is news"


def test_the_route_goes_before_the_finalizer_and_the_service(rig: Rig) -> None:
    rig.origin()
    rig.clone(CLONE)
    rig.reconcile()
    service = rig.client.get(SERVICES, NS, CLONE)
    assert contract.ROUTER_FINALIZER in service["metadata"]["finalizers"]

    rig.client.delete(SERVICES, NS, CLONE)
    held = rig.client.get(SERVICES, NS, CLONE)
    assert held["metadata"].get("deletionTimestamp")
    assert rig.route_names() == [ROUTE, "default"]

    rig.reconcile()

    assert rig.route_names() == ["default"]
    with pytest.raises(errors.NotFound):
        rig.client.get(SERVICES, NS, CLONE)
    assert "Unrouted" in rig.reasons(CLONE)


def test_a_router_created_virtual_service_is_deleted_with_its_last_route(rig: Rig) -> None:
    rig.origin(virtual_service=False)
    rig.clone(CLONE)
    rig.reconcile()
    created = rig.vs()
    assert created["metadata"]["labels"][contract.MANAGED_BY_LABEL] == contract.SERVICE_ROUTER_MANAGER

    rig.client.delete(SERVICES, NS, CLONE)
    rig.reconcile()

    with pytest.raises(errors.NotFound):
        rig.vs()


def _undo_our_routes(rig: Rig) -> None:
    vs = rig.vs()
    vs["spec"]["http"] = [r for r in vs["spec"]["http"] if not r["name"].startswith(contract.MANAGED_ROUTE_PREFIX)]
    rig.client.replace(rig.resource, vs)


def test_a_hand_edit_is_restored_and_a_writer_that_keeps_reverting_is_not_fought(rig: Rig) -> None:
    rig.origin()
    rig.clone(CLONE)
    rig.reconcile()
    labels = {"namespace": NS, "origin": ORIGIN}

    _undo_our_routes(rig)
    rig.reconcile()
    assert rig.route_names() == [ROUTE, "default"]
    assert rig.counter("service_router_reverts_detected_total", **labels) == 1
    assert "RoutesRestored" in rig.reasons(CLONE)

    _undo_our_routes(rig)
    rig.reconcile()
    _undo_our_routes(rig)
    writes = len(rig.vs_writes())
    with pytest.raises(errors.RequeueAfter) as backoff:
        rig.reconcile()
    assert backoff.value.seconds == pytest.approx(300)
    assert len(rig.vs_writes()) == writes
    assert rig.route_names() == ["default"]
    assert rig.counter("service_router_revert_backoffs_total", **labels) == 1
    assert rig.reasons(CLONE).count("RoutesReverted") == 1
    assert rig.reasons(CLONE)[-1] == "NotRouted"

    # While backing off: no writes and no extra reads, however often the key comes back.
    rig.clock.now += 100
    with pytest.raises(errors.RequeueAfter) as again:
        rig.reconcile()
    assert again.value.seconds == pytest.approx(200)
    assert len(rig.vs_writes()) == writes

    # After the back-off one more try; undone at once again, the next back-off is twice as long.
    rig.clock.now += 200
    rig.reconcile()
    assert rig.route_names() == [ROUTE, "default"]
    _undo_our_routes(rig)
    with pytest.raises(errors.RequeueAfter) as longer:
        rig.reconcile()
    assert longer.value.seconds == pytest.approx(600)
    assert rig.counter("service_router_revert_backoffs_total", **labels) == 2


def test_a_new_clone_is_routed_even_while_backing_off(rig: Rig) -> None:
    rig.origin()
    rig.clone(CLONE)
    rig.reconcile()
    for _ in range(2):
        _undo_our_routes(rig)
        rig.reconcile()
    _undo_our_routes(rig)
    with pytest.raises(errors.RequeueAfter):
        rig.reconcile()

    rig.clone("echo-pr2")
    rig.reconcile()

    assert rig.route_names() == [ROUTE, contract.managed_route_name("echo-pr2"), "default"]


def test_our_own_write_seen_late_in_the_cache_is_not_a_revert(lagging_rig: Rig) -> None:
    rig = lagging_rig
    rig.origin()
    rig.clone(CLONE)
    rig.refresh()
    rig.reconcile()
    rig.services.refresh()  # the finalizer; the VirtualService cache still shows the old routes
    writes = len(rig.vs_writes())

    rig.reconcile()

    assert len(rig.vs_writes()) == writes
    assert rig.counter("service_router_reverts_detected_total", namespace=NS, origin=ORIGIN) == 0
    assert rig.counter("service_router_conflicts_total") == 0


def test_warnings_are_reported_once_not_on_every_resync(rig: Rig) -> None:
    rig.origin()
    rig.client.create(
        rig.resource,
        {
            "metadata": {"name": "echo-second", "namespace": NS},
            "spec": {"hosts": ["echo"], "http": [{"route": [{"destination": {"host": "echo"}}]}]},
        },
    )
    rig.clone(CLONE)
    for _ in range(3):
        rig.reconcile()

    assert rig.reasons(CLONE) == ["RoutingWarning", "Routed"]
    assert "picked default/echo" in rig.events[0]["message"]
    assert "service-router--" not in str(rig.vs("echo-second"))


def test_managed_routes_gauge_per_virtual_service(rig: Rig) -> None:
    rig.origin()
    rig.clone(CLONE)
    rig.clone("echo-pr2")
    rig.reconcile()
    labels = {"namespace": NS, "virtual_service": ORIGIN, "origin": ORIGIN}
    assert rig.counter("service_router_managed_routes", **labels) == 2
    assert rig.counter("service_router_virtual_service_writes_total", action="update") == 1


def test_a_managed_route_whose_service_is_gone_is_removed(rig: Rig) -> None:
    """What a resync (at start-up or periodic) does for a clone deleted past our finalizer."""
    rig.origin()
    rig.clone(CLONE)
    rig.reconcile()
    service = rig.client.get(SERVICES, NS, CLONE)
    rig.client.patch(
        SERVICES, NS, CLONE, {"metadata": {"finalizers": [], "resourceVersion": service["metadata"]["resourceVersion"]}}
    )
    rig.client.delete(SERVICES, NS, CLONE)
    assert rig.route_names() == [ROUTE, "default"]

    rig.reconcile()

    assert rig.route_names() == ["default"]


def test_a_clone_that_comes_back_is_routed_again_without_counting_a_revert(rig: Rig) -> None:
    rig.origin(virtual_service=False)
    for _ in range(4):
        rig.clone(CLONE)
        rig.reconcile()
        assert rig.route_names() == [ROUTE, "default"]
        rig.client.delete(SERVICES, NS, CLONE)
        rig.reconcile()
        with pytest.raises(errors.NotFound):
            rig.vs()
    assert rig.counter("service_router_reverts_detected_total", namespace=NS, origin=ORIGIN) == 0


@pytest.mark.parametrize(
    ("hosts", "destinations", "keys"),
    [
        (["echo"], [], ["default/echo"]),
        (["echo.default.svc.cluster.local", "echo.other"], [], ["default/echo", "other/echo"]),
        (["echo.example.com"], ["echo.default.svc.cluster.local", "api"], ["default/api", "default/echo"]),
        (["*.example.com"], ["https://nope"], []),
    ],
    ids=["short", "fqdn-and-other-namespace", "gateway-by-destination", "external-only"],
)
def test_keys_for_virtual_service(hosts: list[str], destinations: list[str], keys: list[str]) -> None:
    from service_router.reconcile import keys_for_virtual_service

    vs = {
        "metadata": {"name": "x", "namespace": NS},
        "spec": {"hosts": hosts, "http": [{"route": [{"destination": {"host": d}} for d in destinations]}]},
    }
    assert keys_for_virtual_service(vs) == keys


def test_no_virtual_service_to_route_through_is_reported_once(rig: Rig) -> None:
    rig.origin()
    vs = rig.vs()
    vs["metadata"]["annotations"] = {contract.VIRTUAL_SERVICE_OPT_OUT_ANNOTATION: "true"}
    rig.client.replace(rig.resource, vs)
    rig.clone(CLONE)

    rig.reconcile()
    rig.reconcile()

    assert rig.reasons(CLONE) == ["RoutingWarning", "NoVirtualService"]
    assert rig.route_names() == ["default"]
    assert len(rig.vs_writes()) == 2  # only the test's own create and opt-out edit


# --- bad input: an origin annotation removed or retargeted, an origin that does not exist ------------


def _annotate(rig: Rig, name: str, origin: str | None) -> None:
    rig.client.patch(SERVICES, NS, name, {"metadata": {"annotations": {contract.ORIGIN_SERVICE_ANNOTATION: origin}}})


def _finalizers(rig: Rig, name: str) -> list[str]:
    return list(rig.client.get(SERVICES, NS, name)["metadata"].get("finalizers") or [])


def test_a_service_whose_origin_annotation_is_removed_loses_its_route_then_the_finalizer(rig: Rig) -> None:
    rig.origin()
    rig.clone(CLONE)
    rig.reconcile()
    assert contract.ROUTER_FINALIZER in _finalizers(rig, CLONE)

    _annotate(rig, CLONE, None)
    rig.reconcile(CLONE)  # its own key first: the old origin's route still stands, so the finalizer stays
    assert contract.ROUTER_FINALIZER in _finalizers(rig, CLONE)
    rig.reconcile()  # the old origin's key, as the update event (old object) enqueues it

    assert rig.route_names() == ["default"]
    assert contract.ROUTER_FINALIZER not in _finalizers(rig, CLONE)
    rig.client.delete(SERVICES, NS, CLONE)
    with pytest.raises(errors.NotFound):
        rig.client.get(SERVICES, NS, CLONE)
    assert rig.reasons(CLONE)[-1] == "Unrouted"


def test_a_finalizer_left_on_a_service_no_longer_a_clone_is_released_by_its_own_key(rig: Rig) -> None:
    """Level-based: after a restart, the Service's own key finds it with no route of ours left."""
    rig.origin()
    rig.clone(CLONE)
    rig.reconcile()
    _annotate(rig, CLONE, None)
    _undo_our_routes(rig)  # the route went while the router was not looking

    rig.reconcile(CLONE)

    assert contract.ROUTER_FINALIZER not in _finalizers(rig, CLONE)


def test_a_retargeted_clone_moves_from_the_old_origins_routes_to_the_new_ones(rig: Rig) -> None:
    rig.origin()
    rig.origin("billing")
    rig.clone(CLONE)
    rig.reconcile()

    _annotate(rig, CLONE, "billing")
    rig.reconcile("billing")
    rig.reconcile()

    assert rig.route_names() == ["default"]
    assert rig.route_names("billing") == [ROUTE, "default"]
    assert contract.ROUTER_FINALIZER in _finalizers(rig, CLONE)  # billing still routes to it

    rig.client.delete(SERVICES, NS, CLONE)
    rig.reconcile("billing")
    assert rig.route_names("billing") == ["default"]
    with pytest.raises(errors.NotFound):
        rig.client.get(SERVICES, NS, CLONE)


@pytest.mark.parametrize("origin", ["ghost", "frontend.shop"], ids=["no-such-service", "not-a-service-name"])
def test_an_origin_that_is_not_a_service_gets_a_warning_and_nothing_written(rig: Rig, origin: str) -> None:
    rig.clone(CLONE, origin=origin)

    rig.reconcile(origin)
    rig.reconcile(origin)

    assert rig.vs_writes() == []
    assert rig.client.list(rig.resource, NS)[0] == []
    assert _finalizers(rig, CLONE) == []
    assert rig.reasons(CLONE) == ["OriginNotFound"]
    assert [e["type"] for e in rig.events] == ["Warning"]
    assert rig.counter("service_router_skipped_total", namespace=NS, reason="origin_not_found") == 2


def test_an_origin_that_appears_later_gets_its_clones_routed(rig: Rig) -> None:
    rig.clone(CLONE, origin="ghost")
    rig.reconcile("ghost")
    assert rig.vs_writes() == []

    rig.origin("ghost", virtual_service=False)
    rig.reconcile("ghost")

    assert rig.route_names("ghost") == [ROUTE, "default"]
    assert rig.reasons(CLONE) == ["OriginNotFound", "Routed"]


def test_a_clone_of_an_origin_that_went_away_keeps_its_route_and_still_may_go(rig: Rig) -> None:
    rig.origin()
    rig.clone(CLONE)
    rig.clone("echo-pr2")
    rig.reconcile()
    rig.client.delete(SERVICES, NS, ORIGIN)
    rig.clone("echo-pr3")

    rig.reconcile()
    assert rig.route_names() == [ROUTE, contract.managed_route_name("echo-pr2"), "default"]
    assert _finalizers(rig, "echo-pr3") == []

    rig.client.delete(SERVICES, NS, CLONE)
    rig.reconcile()
    assert rig.route_names() == [contract.managed_route_name("echo-pr2"), "default"]
    with pytest.raises(errors.NotFound):
        rig.client.get(SERVICES, NS, CLONE)
