"""A pull request's whole life, with both controllers as real processes against the emulators.

Open a PR: its clone and route appear. Push: the clone follows the new head. Open a second PR:
two routes, both before the default. Close one and merge the other: clones and routes gone. The
origin Deployment, Service and default route stay untouched throughout, and every object the
controllers wrote validates against Kubernetes' schema and, for the VirtualService, Istio's.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from invariants import Expectations, assert_invariants, snapshot

from controller_common import contract
from controller_common.kube import DEPLOYMENTS
from e2e_support import wait_until
from evaluate_support import route_request
from istio_schema import istio_errors
from shared_data import find_shared_dir
from world import Snapshot, World

pytestmark = pytest.mark.e2e

ORIGIN = "echo"
IMAGE = "ghcr.io/mercari/echo:1.4.2"
HEADER = contract.routing_header(ORIGIN, "default")


def _origin_state(snap: Snapshot) -> tuple[Any, ...]:
    """What a user wrote on the origin (status is the deployment controller's, so it may move)."""
    deployment, service = snap.deployments[ORIGIN], snap.services[ORIGIN]
    return (
        deployment["metadata"]["generation"],
        deployment["metadata"].get("labels"),
        # deployment.kubernetes.io/revision is the deployment controller's, like status
        {k: v for k, v in (deployment["metadata"].get("annotations") or {}).items() if "kubernetes.io/" not in k},
        deployment["spec"],
        service["metadata"]["resourceVersion"],
        service["spec"],
    )


def _validate_written(snap: Snapshot) -> None:
    for obj in [*snap.deployments.values(), *snap.services.values()]:
        if contract.MANAGED_BY_LABEL in (obj["metadata"].get("labels") or {}):
            kubernetes_validate.validate(_without_server_fields(obj), "1.33", strict=True)
    shared = find_shared_dir()
    if shared is not None and snap.virtual_service is not None:
        assert istio_errors(_without_server_fields(snap.virtual_service), shared) == []


def _without_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "status"}


def test_pull_request_gets_an_environment_and_a_route_then_loses_them(world: World) -> None:
    repo = world.create_repository(ORIGIN)
    world.seed_origin(ORIGIN, repository=f"https://github.com/mercari/{ORIGIN}", image=IMAGE)
    world.start_controllers()
    before = world.snapshot(ORIGIN)
    untouched = snapshot(world)

    first = world.open_pull_request(repo, "feature-a")
    clone_a = f"{ORIGIN}-pr{first}"
    snap = world.wait_for(
        ORIGIN,
        lambda s: (
            clone_a in s.deployments and clone_a in s.services and s.route_names[:1] == [f"service-router--{clone_a}"]
        ),
        message="first PR cloned and routed",
    )
    head_a = repo.get_pull(first).head.sha
    assert snap.image(clone_a) == f"ghcr.io/mercari/echo:pr-{first}"
    assert snap.services[clone_a]["metadata"]["annotations"][contract.ORIGIN_SERVICE_ANNOTATION] == ORIGIN
    assert snap.deployments[clone_a]["spec"]["replicas"] == 1
    assert route_request(snap.virtual_service, host=ORIGIN, headers={HEADER: f"{clone_a}.default"}) == clone_a
    assert route_request(snap.virtual_service, host=ORIGIN, headers={}) == ORIGIN
    _validate_written(snap)

    new_head = world.push(repo, "feature-a")
    assert new_head != head_a
    world.wait_for(
        ORIGIN,
        lambda s: (
            (s.deployments[clone_a]["metadata"].get("annotations") or {}).get(contract.CLONE_HEAD_SHA_ANNOTATION)
            == new_head
        ),
        message="clone follows the new head",
    )

    second = world.open_pull_request(repo, "feature-b")
    clone_b = f"{ORIGIN}-pr{second}"
    snap = world.wait_for(
        ORIGIN,
        lambda s: sorted(s.route_names[:2]) == sorted([f"service-router--{clone_a}", f"service-router--{clone_b}"]),
        message="two routes before the default",
    )
    assert snap.route_names[-1] == "default"
    assert route_request(snap.virtual_service, host=ORIGIN, headers={HEADER: f"{clone_b}.default"}) == clone_b
    _validate_written(snap)

    repo.get_pull(first).edit(state="closed")
    repo.get_pull(second).merge()
    snap = world.wait_for(
        ORIGIN,
        lambda s: not ({clone_a, clone_b} & (set(s.deployments) | set(s.services))) and s.route_names == ["default"],
        message="closed and merged PRs lose clones and routes",
    )
    assert _origin_state(snap) == _origin_state(before)
    assert snap.virtual_service is not None
    assert snap.virtual_service["spec"]["http"] == before.virtual_service["spec"]["http"]  # type: ignore[index]
    for controller in world.controllers:
        assert controller.running, controller.logs()[-3000:]
    assert_invariants(world, untouched)


def test_no_route_lingers_when_the_origin_loses_its_opt_in(world: World) -> None:
    repo = world.create_repository(ORIGIN)
    world.seed_origin(ORIGIN, repository=f"mercari/{ORIGIN}", image=IMAGE)
    world.start_controllers()
    untouched = snapshot(world)
    number = world.open_pull_request(repo, "feature-x")
    clone = f"{ORIGIN}-pr{number}"
    world.wait_for(ORIGIN, lambda s: f"service-router--{clone}" in s.route_names, message="routed")

    world.client.patch(
        DEPLOYMENTS,
        "default",
        ORIGIN,
        {"metadata": {"annotations": {contract.REPOSITORY_ANNOTATION: None}}},
    )
    wait_until(
        lambda: clone not in world.snapshot(ORIGIN).deployments and world.snapshot(ORIGIN).route_names == ["default"],
        # Well under the controllers' 30 s resync: the opt-out itself must trigger the cleanup.
        timeout=10,
        message="opt-out removes the environment",
    )
    assert_invariants(world, untouched, Expectations(changed={f"Deployment/default/{ORIGIN}"}))
