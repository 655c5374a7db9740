"""What people see on GitHub, written by the replicator process (``--github-deployments``,
``--github-pr-comment``).

Two origins on one repository and one pull request: two GitHub deployments (``pr-<N>/<origin>``)
go in_progress -> success once the clone Deployments are Available, with the routing header as
description; one comment lists both environments with the headers and a curl example. A push
makes new deployments for the new head and edits the same comment; closing the pull request
marks the deployments inactive and says so in the same comment. Never a second comment. The
replicator authenticates as a GitHub App (``--github-app-id``, ``--github-app-private-key-file``),
so everything it writes is by the app's bot.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from e2e.replicator_support import Replicator, head_of, open_pull, seed, start_router, until, wait_clones

from controller_common import contract
from world import OWNER, TOKEN, World

pytestmark = pytest.mark.e2e

APP_ID = 31337


def _latest_states(repo: Any, number: int, origin: str) -> list[tuple[str, str, str]]:
    """(sha, newest state, description) of every deployment of one environment, newest first."""
    result = []
    for deployment in repo.get_deployments(environment=contract.github_environment(number, origin)):
        statuses = list(deployment.get_statuses())
        newest = statuses[0] if statuses else None
        result.append((deployment.sha, newest.state if newest else "", newest.description if newest else ""))
    return result


def _comments(repo: Any, number: int) -> list[Any]:
    return [c for c in repo.get_issue(number).get_comments() if contract.PR_COMMENT_MARKER in c.body]


def test_deployments_and_one_sticky_comment_follow_the_environments(world: World) -> None:
    repo = world.create_repository("shop")
    for origin in ("web", "api"):
        seed(world, origin, repository=f"{OWNER}/shop")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    world.github.add_app(APP_ID, public_key_pem=public, slug="replicator")
    world.github.install_app(APP_ID, OWNER)
    key_file = world.workdir / "app.pem"
    key_file.write_bytes(pem)
    feedback = ["--github-deployments", "--github-pr-comment", "--github-write-interval", "0.05"]
    app = ["--github-app-id", str(APP_ID), "--github-app-private-key-file", str(key_file)]
    Replicator(world, poll_interval=0.3, extra=[*feedback, *app], env={"GITHUB_TOKEN": ""})
    start_router(world)
    number = open_pull(world, repo, "feature")
    head = head_of(wait_clones(world, "web", {number})[number])

    for origin in ("web", "api"):
        states = until(
            lambda origin=origin: (s := _latest_states(repo, number, origin)) and s[0][1] == "success" and s,
            message=f"deployment of {origin} succeeds",
            world=world,
        )
        assert states[0][0] == head
        assert contract.routing_header(origin, "default") in states[0][2]
        statuses = [
            s.state for s in next(iter(repo.get_deployments(environment=f"pr-{number}/{origin}"))).get_statuses()
        ]
        assert statuses[-1] == "in_progress"
    comment = until(
        lambda: (c := _comments(repo, number)) and "curl" in c[0].body and "deploying" not in c[0].body and c,
        message="the sticky comment with both environments ready",
        world=world,
    )
    assert len(comment) == 1
    body = comment[0].body
    assert f"web-pr{number}" in body and f"api-pr{number}" in body and "curl" in body
    assert contract.routing_header("api", "default") in body
    comment_id = comment[0].id

    new_head = world.push(repo, "feature")
    until(
        lambda: all(
            (s := _latest_states(repo, number, o)) and s[0][0] == new_head and s[0][1] == "success"
            for o in ("web", "api")
        ),
        message="new deployments for the new head succeed",
        world=world,
    )
    until(lambda: new_head[:7] in _comments(repo, number)[0].body, message="comment shows the new head", world=world)

    repo.get_pull(number).edit(state="closed")
    until(
        lambda: all(_latest_states(repo, number, o)[0][1] == "inactive" for o in ("web", "api")),
        message="closed pull request: deployments inactive",
        world=world,
    )
    until(lambda: "no environment" in _comments(repo, number)[0].body, message="comment says so", world=world)
    assert [c.id for c in _comments(repo, number)] == [comment_id]
    assert comment[0].user.login == "replicator[bot]"
    assert {
        r.login
        for r in list(world.github.request_log)
        if r.path.startswith("/repos/mercari/shop/pulls") and r.token != TOKEN
    } == {"replicator[bot]"}
    assert world.github.internal_errors == []


def test_an_environment_removed_while_no_replicator_ran_goes_inactive_at_start(world: World) -> None:
    repo = world.create_repository("shop")
    for origin in ("web", "api"):
        seed(world, origin, repository=f"{OWNER}/shop")
    feedback = ["--github-deployments", "--github-write-interval", "0.05"]
    replicator = Replicator(world, poll_interval=0.3, extra=feedback)
    number = open_pull(world, repo, "feature")
    for origin in ("web", "api"):
        wait_clones(world, origin, {number})
        until(
            lambda o=origin: [s for _, s, _ in _latest_states(repo, number, o)][:1] == ["success"],
            message=f"{origin} success",
            world=world,
        )
    assert replicator.stop() == 0
    # While no replicator runs, the api origin and its clone go (the clone by garbage collection).
    from controller_common.kube import DEPLOYMENTS

    world.client.delete(DEPLOYMENTS, world.namespace, "api")
    until(lambda: not wait_clones(world, "api", set()), message="api clone collected", world=world)

    Replicator(world, poll_interval=0.3, extra=feedback, tag="#restarted")
    until(
        lambda: [s for _, s, _ in _latest_states(repo, number, "api")][:1] == ["inactive"],
        message="api environment inactive after the restart",
        world=world,
    )
    assert [s for _, s, _ in _latest_states(repo, number, "web")][:1] == ["success"], "web keeps its environment"
