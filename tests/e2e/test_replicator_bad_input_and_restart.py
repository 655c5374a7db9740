"""Bad input never spreads, and a restarted replicator cleans up what changed while it was away.

One world with a healthy origin next to: an origin whose annotation becomes malformed after it
got a clone (Warning Event, clone kept, no new clone), one naming a repository that does not
exist (Warning Event, metric), and one without a Service (Warning Event naming the fix). The
healthy origin keeps getting environments throughout. Then the replicator is stopped; a pull
request is closed and an origin loses its opt-in; the next replicator process deletes exactly
those clones at start-up and keeps the rest. One more origin names the repository by an
Enterprise-style URL whose API base comes from ``--github-enterprise-api-url``.
"""

from __future__ import annotations

import pytest
from e2e.replicator_support import Replicator, open_pull, seed, start_router, validate_written, wait_clones, wait_event
from invariants import Expectations, assert_invariants, snapshot

from controller_common import contract
from controller_common.kube import DEPLOYMENTS
from world import OWNER, World

pytestmark = pytest.mark.e2e


def _annotate(world: World, name: str, annotations: dict[str, str | None]) -> None:
    world.client.patch(DEPLOYMENTS, world.namespace, name, {"metadata": {"annotations": annotations}})


def test_bad_origins_are_reported_and_contained_and_a_restart_removes_leftovers(world: World) -> None:
    shop = world.create_repository("shop")
    first = open_pull(world, shop, "first")
    repository = f"https://github.com/{OWNER}/shop"
    for name in ("healthy", "broken", "leaving"):
        seed(world, name, repository=repository)
    seed(world, "ghost", repository=f"{OWNER}/no-such-repository")
    seed(world, "headless", repository=repository, service=False)
    # The same repository seen as if on a GitHub Enterprise host, reached through a host mapping.
    enterprise_host = world.github.url.removeprefix("http://")
    seed(world, "enterprise", repository=f"{world.github.url}/{OWNER}/shop")
    mapping = ["--github-enterprise-api-url", f"{enterprise_host}={world.github.api_url}"]
    untouched = snapshot(world)
    replicator = Replicator(world, poll_interval=0.3, extra=mapping)
    start_router(world)
    for name in ("healthy", "broken", "leaving", "headless", "enterprise"):
        wait_clones(world, name, {first})
    clone = world.client.get(DEPLOYMENTS, world.namespace, f"enterprise-pr{first}")
    assert (
        clone["metadata"]["annotations"][contract.CLONE_REPOSITORY_ANNOTATION]
        == f"https://{enterprise_host}/{OWNER}/shop"
    )

    unavailable = wait_event(world, "ghost", "RepositoryUnavailable")
    assert unavailable["type"] == "Warning" and "no-such-repository" in unavailable["message"]
    no_service = wait_event(world, "headless", "NoService")
    assert "create a Service" in no_service["message"]

    _annotate(world, "broken", {contract.MAX_ENVIRONMENTS_ANNOTATION: "plenty"})
    invalid = wait_event(world, "broken", "InvalidAnnotation")
    assert contract.MAX_ENVIRONMENTS_ANNOTATION in invalid["message"] and "whole number" in invalid["message"]
    second = open_pull(world, shop, "second")
    wait_clones(world, "healthy", {first, second})
    assert set(wait_clones(world, "broken", {first})) == {first}, "a malformed annotation deletes nothing"
    assert replicator.metric("replicator_origin_errors_total", reason="annotation") >= 1
    assert replicator.metric("replicator_origin_errors_total", reason="github") >= 1
    assert validate_written(world) >= 6

    # Changes while no replicator runs: a pull request closes, an origin opts out.
    assert replicator.stop() == 0
    shop.get_pull(first).edit(state="closed")
    _annotate(world, "leaving", {contract.REPOSITORY_ANNOTATION: None})
    Replicator(world, poll_interval=0.3, extra=mapping, tag="#restarted")
    wait_clones(world, "healthy", {second})
    wait_clones(world, "enterprise", {second})
    wait_clones(world, "headless", {second})
    wait_clones(world, "leaving", set())
    assert set(wait_clones(world, "broken", {first})) == {first}, "still malformed: still untouched"
    for controller in world.controllers[1:]:
        assert controller.running, controller.logs()[-3000:]
    # Malformed: its clone stays as it was; an unknown repository: nothing to clone.
    bad = {"default/broken": [first], "default/ghost": []}
    changed = {"Deployment/default/broken", "Deployment/default/leaving"}
    assert_invariants(world, untouched, Expectations(environments=bad, changed=changed))
