"""How changes reach the replicator process: signed webhooks, polling, and GitHub's limits.

One world: GitHub delivers to three hooks on the same repository — the right secret (202), a wrong
secret (401) and none (401) — and the good one alone brings the clone: the poll interval is far
longer than the test, the clone exists before any list request (the signed delivery's pull
request is applied as it comes), and one list confirms it a moment later. With
deliveries dropped, a replicator polling often gets the next push through polling alone. An
exhausted rate limit and a secondary limit with ``Retry-After`` pause polling until GitHub allows
it again instead of retrying hot.
"""

from __future__ import annotations

import itertools
import socket

import pytest
from e2e.replicator_support import (
    Replicator,
    head_of,
    list_requests,
    open_pull,
    seed,
    start_router,
    until,
    wait_clones,
)

from world import OWNER, TOKEN, World, free_port

pytestmark = pytest.mark.e2e

SECRET = "webhook-secret"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_webhooks_are_verified_polling_recovers_lost_ones_and_limits_are_honoured(world: World) -> None:
    repo = world.create_repository("hooks")
    seed(world, "hooked", repository=f"{OWNER}/hooks")
    port = free_port()
    # A poll interval far beyond the test: whatever reaches the clone quickly came by webhook.
    replicator = Replicator(
        world,
        poll_interval=120.0,
        extra=["--webhook-bind-address", f"127.0.0.1:{port}"],
        env={"GITHUB_WEBHOOK_SECRET": SECRET},
    )
    start_router(world)
    until(lambda: _listening(port), message="the webhook receiver listens", world=world)
    url = f"http://127.0.0.1:{port}/webhook"
    hooks = {
        "good": repo.create_hook("web", {"url": url, "content_type": "json", "secret": SECRET}, ["pull_request"]).id,
        "bad": repo.create_hook("web", {"url": url, "content_type": "form", "secret": "wrong"}, ["pull_request"]).id,
        "missing": repo.create_hook("web", {"url": url, "content_type": "json"}, ["pull_request"]).id,
    }

    lists_before = list_requests(world, f"{OWNER}/hooks")
    number = open_pull(world, repo, "feature")
    clone = wait_clones(world, "hooked", {number})[number]
    until(
        lambda: list_requests(world, f"{OWNER}/hooks") == lists_before + 1,
        message="one list confirms the delivery",
        world=world,
    )
    # The signed delivery's pull request was applied as it came: the clone was written before
    # the list that confirmed it was even asked for.
    (confirming,) = [r.at for r in world.github.request_log if r.path == f"/repos/{OWNER}/hooks/pulls"][-1:]
    created = [
        r.at
        for r in world.kube.request_log
        if r.verb == "create" and r.resource == "deployments" and r.user_agent.startswith("replicator")
    ]
    assert created and min(created) < confirming, "the clone came from the delivery itself"
    assert world.github.wait_for_webhooks(timeout=10)
    answers = {(d.hook_id, d.event): d.status_code for d in world.github.deliveries}
    assert answers == {
        (hooks["good"], "ping"): 202,
        (hooks["bad"], "ping"): 401,
        (hooks["missing"], "ping"): 401,
        (hooks["good"], "pull_request"): 202,
        (hooks["bad"], "pull_request"): 401,
        (hooks["missing"], "pull_request"): 401,
    }
    deliveries = "replicator_webhook_deliveries_total"
    assert replicator.metric(deliveries, event="pull_request", result="accepted") >= 1
    assert replicator.metric(deliveries, event="unverified", result="bad-signature") >= 1
    assert replicator.metric(deliveries, event="unverified", result="missing-signature") == 2

    # A lost delivery: GitHub never redelivers, polling is the truth.
    assert replicator.stop() == 0
    replicator = Replicator(world, poll_interval=0.5, tag="#polling")
    world.github.faults.drop_webhooks = True
    head = world.push(repo, "feature")
    assert head != head_of(clone)
    until(
        lambda: head_of(wait_clones(world, "hooked", {number})[number]) == head,
        message="the clone follows a push whose webhook was dropped",
        world=world,
    )
    assert world.github.wait_for_webhooks(timeout=10)
    assert [d.dropped for d in world.github.deliveries if d.event == "pull_request"][-3:] == [True, True, True]

    # The budget runs out: one refused request, then silence until the reset, then polling again.
    world.github.clear_request_log()
    world.github.set_rate_limit(TOKEN, remaining=0, reset_in_seconds=3)

    def pulls() -> list[tuple[int, float]]:
        return [(r.status, r.at) for r in list(world.github.request_log) if r.path.endswith("/pulls")]

    until(lambda: any(status in (200, 304) for status, _ in pulls()), message="polling resumes", world=world)
    refused = [at for status, at in pulls() if status == 403]
    assert 1 <= len(refused) <= 2, pulls()

    # A secondary limit with Retry-After: the next attempt waits at least that long.
    world.github.clear_request_log()
    world.github.faults.inject(method="GET", path_regex=r"/hooks/pulls$", status=429, retry_after=2, times=2)
    until(lambda: [s for s, _ in pulls()].count(429) == 2, message="two 429s", world=world)
    until(lambda: any(s in (200, 304) for s, _ in pulls()), message="polling resumes", world=world)
    times = [at for _, at in pulls()]
    assert all(later - earlier >= 1.9 for earlier, later in itertools.pairwise(times)), times
    assert replicator.metric("replicator_github_requests_total", endpoint="pulls", status="429") == 2
    for controller in world.controllers[1:]:
        assert controller.running, controller.logs()[-3000:]
