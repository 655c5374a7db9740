"""A clone's rollout status changing (Pods becoming ready) makes no replicator reconcile: nothing it
plans from changed. A change to its labels does. (GitHub feedback still hears about the status.)"""

from __future__ import annotations

import pytest
from e2e.replicator_support import Replicator, open_pull, seed, until, wait_clones

from controller_common import errors
from controller_common.kube import DEPLOYMENTS
from world import OWNER, World

pytestmark = pytest.mark.e2e


def test_status_only_updates_of_a_clone_are_not_reconciled(world: World) -> None:
    repo = world.create_repository("shop")
    seed(world, "web", repository=f"{OWNER}/shop")
    replicator = Replicator(world, poll_interval=30)
    number = open_pull(world, repo, "feature")
    clone = wait_clones(world, "web", {number})[number]
    name = clone["metadata"]["name"]

    def reconciles() -> float:
        return replicator.metric("replicator_reconcile_total", controller="replicator", result="success")

    def quiet() -> float:
        """The count once the queue is empty and it held still over 20 polls (about a second)."""
        seen: list[float] = []

        def settled() -> bool:
            depth = replicator.metric("replicator_workqueue_depth", name="replicator")
            seen.append(reconciles() if depth == 0 else -1.0)
            return len(seen) >= 20 and len(set(seen[-20:])) == 1 and seen[-1] >= 0

        until(settled, message="replicator quiet", world=world)
        return seen[-1]

    before = quiet()
    for ready in (0, 1, 0, 1):
        for _attempt in range(20):  # the emulator's rollout writes status too: retry a stale read
            current = world.client.get(DEPLOYMENTS, world.namespace, name)
            current["status"] = {**(current.get("status") or {}), "readyReplicas": ready}
            try:
                world.client.replace_status(DEPLOYMENTS, current)
                break
            except errors.Conflict:
                continue
    # A label change right after: its reconcile proves the status updates were seen (and skipped).
    world.client.patch(DEPLOYMENTS, world.namespace, name, {"metadata": {"labels": {"touched": "yes"}}})
    until(lambda: reconciles() >= before + 1, message="the label change reconciled", world=world)
    assert quiet() == before + 1, "status-only updates made reconciles"
