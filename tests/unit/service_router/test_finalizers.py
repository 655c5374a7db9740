"""Who keeps the router's finalizer, and which reconcile releases it (pure, plain dicts)."""

from __future__ import annotations

from typing import Any

import pytest

from controller_common import contract
from service_router.finalizers import after_writes, routed_services, to_release
from service_router.reconcile import (
    keys_for_service,
    keys_for_update,
    keys_for_virtual_service,
    keys_for_virtual_service_change,
)
from service_router.routes import VirtualServicePlan

NS = "default"


def service(name: str, origin: str | None = None, *, finalizer: bool = True, deleting: bool = False) -> dict:
    metadata: dict[str, Any] = {"name": name, "namespace": NS}
    if origin is not None:
        metadata["annotations"] = {contract.ORIGIN_SERVICE_ANNOTATION: origin}
    if finalizer:
        metadata["finalizers"] = ["other/keep", contract.ROUTER_FINALIZER]
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": metadata}


def route(clone: str, origin: str, *, header: bool = True) -> dict:
    """A route as the router writes it for ``clone`` of ``origin`` (``header=False``: a look-alike)."""
    written: dict[str, Any] = {
        "name": contract.managed_route_name(clone),
        "route": [{"destination": {"host": contract.service_host(clone, NS)}}],
    }
    if header:
        value = contract.routing_value(clone, NS)
        written["match"] = [{"headers": {contract.routing_header(origin, NS): {"exact": value}}}]
    return written


def vs(name: str, *routes: dict) -> dict:
    host = contract.service_host(name, NS)
    default = {"name": "default", "route": [{"destination": {"host": host}}]}
    return {"metadata": {"name": name, "namespace": NS}, "spec": {"hosts": [host], "http": [*routes, default]}}


ECHO_ROUTES_PR1 = vs("echo", route("echo-pr1", "echo"))
ECHO_EMPTY = vs("echo")
BILLING_ROUTES_PR1 = vs("billing", route("echo-pr1", "billing"))


@pytest.mark.parametrize(
    ("svc", "observed", "standing", "released"),
    [
        (service("echo-pr1"), [ECHO_ROUTES_PR1], [ECHO_EMPTY], True),
        (service("echo-pr1"), [ECHO_ROUTES_PR1], [ECHO_ROUTES_PR1], False),
        (service("echo-pr1", "billing"), [ECHO_ROUTES_PR1], [ECHO_EMPTY], False),
        (service("echo-pr1", "billing", deleting=True), [ECHO_ROUTES_PR1], [ECHO_EMPTY, BILLING_ROUTES_PR1], False),
        (service("echo-pr1", "echo", deleting=True), [ECHO_ROUTES_PR1], [ECHO_EMPTY], True),
        (service("echo-pr1", "echo", deleting=True), [ECHO_ROUTES_PR1], [ECHO_ROUTES_PR1], False),
        (service("echo-pr1", "echo"), [ECHO_EMPTY], [ECHO_EMPTY], False),
        (service("echo-pr1"), [ECHO_EMPTY], [ECHO_EMPTY], False),
        (service("echo"), [ECHO_EMPTY], [ECHO_EMPTY], True),
        (service("echo"), [vs("x", route("echo", "x"))], [vs("x", route("echo", "x"))], False),
        (service("echo-pr1", finalizer=False), [ECHO_ROUTES_PR1], [ECHO_EMPTY], False),
        (service("echo-pr1"), [ECHO_ROUTES_PR1], [ECHO_EMPTY, BILLING_ROUTES_PR1], False),
        (service("echo-pr1"), [ECHO_ROUTES_PR1], [vs("echo", route("echo-pr1", "echo", header=False))], True),
    ],
    ids=[
        "annotation-removed-route-gone",
        "annotation-removed-route-still-standing",
        "retargeted-the-new-origin-needs-it",
        "retargeted-then-deleted-still-routed-by-the-new-origin",
        "deleted-clone-route-gone",
        "deleted-clone-route-held",
        "live-clone-keeps-it",
        "not-answerable-not-routed-here-not-named-so",
        "annotation-removed-own-key-after-restart",
        "own-key-but-still-routed-elsewhere",
        "no-finalizer-nothing-to-do",
        "routed-by-another-origin-too",
        "a-look-alike-route-does-not-hold-it",
    ],
)
def test_to_release(svc: dict, observed: list[dict], standing: list[dict], released: bool) -> None:
    result = to_release([svc], origin_service="echo", namespace=NS, observed=observed, standing=standing)
    assert (result == [svc]) is released


def test_routed_services_count_only_routes_proven_ours() -> None:
    standing = [vs("echo", route("echo-pr1", "echo"), route("echo-pr2", "echo", header=False)), BILLING_ROUTES_PR1]
    assert routed_services(standing, namespace=NS) == {"echo-pr1"}


def test_after_writes_applies_creates_updates_and_deletes() -> None:
    gone, kept = vs("gone", route("a", "gone")), vs("kept")
    updated = vs("echo", route("echo-pr1", "echo"))
    created = vs("new")
    result = after_writes(
        [gone, kept, ECHO_EMPTY],
        [
            VirtualServicePlan("delete", gone),
            VirtualServicePlan("update", updated),
            VirtualServicePlan("create", created),
        ],
    )
    assert result == [kept, updated, created]


@pytest.mark.parametrize(
    ("old", "new", "keys"),
    [
        (service("echo-pr1", "echo"), service("echo-pr1"), ["default/echo", "default/echo-pr1"]),
        (service("echo-pr1", "echo"), service("echo-pr1", "billing"), ["default/billing", "default/echo"]),
        (service("echo-pr1", "echo"), service("echo-pr1", "echo"), ["default/echo"]),
        (service("ghost"), service("ghost"), ["default/ghost"]),
    ],
    ids=["annotation-removed", "retargeted", "unchanged", "an-origin-enqueues-its-clones-key"],
)
def test_a_service_update_reaches_the_old_and_the_new_origin(old: dict, new: dict, keys: list[str]) -> None:
    assert keys_for_update(keys_for_service, old, new) == keys


def test_a_virtual_service_that_lost_a_route_reaches_the_service_it_sent_to() -> None:
    assert keys_for_virtual_service_change(ECHO_ROUTES_PR1, ECHO_EMPTY) == ["default/echo", "default/echo-pr1"]
    assert keys_for_virtual_service_change(ECHO_ROUTES_PR1, None) == ["default/echo", "default/echo-pr1"]


def test_our_own_routes_enqueue_their_origin_not_the_clone_they_send_to() -> None:
    # A VirtualService update that keeps or adds our routes (our own writes, every resync)
    # must not make a no-op reconcile per clone: the origin named in the header is the key.
    assert keys_for_virtual_service(ECHO_ROUTES_PR1) == ["default/echo"]
    assert keys_for_virtual_service_change(ECHO_EMPTY, ECHO_ROUTES_PR1) == ["default/echo"]
    assert keys_for_virtual_service_change(ECHO_ROUTES_PR1, ECHO_ROUTES_PR1) == ["default/echo"]
