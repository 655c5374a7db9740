"""An image gate holds a clone on the commit whose image exists; idle pull requests lose theirs.

One world, one repository, two origins. ``gated`` names the check ``build-image``: a new pull
request gets no clone until that check run succeeds on its head; after a push the clone keeps
running the previous commit (and says so) until a commit status of the same name succeeds on the
new head. ``idle`` expires environments an hour after their head commit: a pull request last
committed two hours ago gets none until it is labelled ``keep``; one committed just under an
hour ago gets one, which goes away when the hour is up, without any other trigger.
"""

from __future__ import annotations

import time

import pytest
from e2e.replicator_support import (
    Replicator,
    head_of,
    open_pull,
    seed,
    start_router,
    until,
    validate_written,
    wait_clones,
    wait_event,
)
from invariants import Expectations, assert_invariants, snapshot

from controller_common import contract
from world import OWNER, World

pytestmark = pytest.mark.e2e

GATE = "build-image"


def test_image_gate_holds_the_previous_commit_and_idle_environments_expire(world: World) -> None:
    repo = world.create_repository("shop")
    repository = f"{OWNER}/shop"
    seed(world, "gated", repository=repository, annotations={contract.IMAGE_GATE_ANNOTATION: GATE})
    seed(
        world,
        "idle",
        repository=repository,
        annotations={contract.IDLE_EXPIRY_ANNOTATION: "1h", contract.KEEP_LABEL_ANNOTATION: "keep"},
    )
    stale = open_pull(world, repo, "stale", committed_at=time.time() - 2 * 3600)
    expiring = open_pull(world, repo, "expiring", committed_at=time.time() - 3600 + 10)
    untouched = snapshot(world)
    replicator = Replicator(world, poll_interval=0.3)
    start_router(world)

    # Idle expiry: the stale PR is skipped, the expiring one has an environment until its hour is up.
    wait_clones(world, "idle", {expiring})
    assert f"idle: #{stale}" in wait_event(world, "idle", "PullRequestsSkipped")["message"]

    # Image gate: nothing until the check run succeeds on the head.
    assert "image-pending" in wait_event(world, "gated", "PullRequestsSkipped", contains=f"#{stale}")["message"]
    wait_clones(world, "gated", set())
    first_head = repo.get_pull(stale).head.sha
    repo.create_check_run(name=GATE, head_sha=first_head, status="completed", conclusion="success")
    clone = wait_clones(world, "gated", {stale})[stale]
    assert head_of(clone) == first_head

    # A push whose image is not built yet: the clone stays on the previous commit.
    second_head = world.push(repo, "stale")
    held = wait_event(world, "gated", "ImageNotReady", contains=second_head[:7])
    assert first_head[:7] in held["message"]
    held_clone = wait_clones(world, "gated", {stale})[stale]
    assert head_of(held_clone) == first_head
    env = {e["name"]: e.get("value") for e in held_clone["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == {"PR_NUMBER": str(stale), "PR_HEAD_SHA": first_head, "PR_BRANCH": "stale"}
    repo.get_commit(second_head).create_status("success", context=GATE)
    until(
        lambda: head_of(wait_clones(world, "gated", {stale})[stale]) == second_head,
        message="the clone moves once the commit status succeeds",
        world=world,
    )

    # The keep label brings the stale PR back; the expiring one goes on its own.
    repo.get_issue(stale).add_to_labels("keep")
    wait_clones(world, "idle", {stale}, timeout=30)
    assert validate_written(world) >= 4
    gate_reads = [r for r in list(world.github.request_log) if "/check-runs" in r.path or r.path.endswith("/status")]
    assert gate_reads and all(not r.counted_against_rate_limit for r in gate_reads if r.status == 304)
    assert replicator.metric("replicator_github_requests_total", endpoint="commit", status="200") >= 2
    # Both depend on more than the PR list (gate states, commit times): the test names them.
    expected = {"default/gated": [stale], "default/idle": [stale]}
    assert_invariants(world, untouched, Expectations(environments=expected))
