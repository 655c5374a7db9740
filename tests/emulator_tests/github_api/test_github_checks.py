"""Commit statuses, check runs, deployments and issue comments through PyGithub unchanged."""

from __future__ import annotations

import pytest
import requests
from github import GithubException
from github.Repository import Repository

from emulators.github_api import GitHubApiServer

from .conftest import BOB, auth, client


@pytest.fixture
def head(gh: GitHubApiServer, repo: Repository) -> str:
    sha = gh.push("alice", "shop", "feature")
    repo.create_pull(base="main", head="feature", title="t")
    return sha


@pytest.mark.parametrize(
    ("states", "combined"),
    [
        ([], "pending"),
        ([("ci", "success")], "success"),
        ([("ci", "success"), ("image", "pending")], "pending"),
        ([("ci", "success"), ("image", "failure")], "failure"),
        ([("ci", "error"), ("ci", "success")], "success"),  # the latest per context counts
    ],
    ids=["none", "one-success", "one-pending", "one-failure", "latest-wins"],
)
def test_combined_status(repo: Repository, head: str, states: list[tuple[str, str]], combined: str) -> None:
    commit = repo.get_commit(head)
    for context, state in states:
        commit.create_status(state, target_url="https://ci/1", description="d", context=context)
    result = commit.get_combined_status()
    assert result.state == combined
    assert result.sha == head
    assert len(result.statuses) == len({c for c, _ in states})


def test_statuses_by_branch_name_and_invalid_state(gh: GitHubApiServer, repo: Repository, head: str) -> None:
    repo.get_commit(head).create_status("success", context="image")
    by_branch = requests.get(f"{gh.api_url}/repos/alice/shop/commits/feature/statuses", headers=auth()).json()
    assert [s["context"] for s in by_branch] == ["image"]
    with pytest.raises(GithubException) as err:
        repo.get_commit(head).create_status("great")
    assert err.value.status == 422


def test_check_runs_created_updated_and_filtered(repo: Repository, head: str) -> None:
    run = repo.create_check_run("image-build", head, status="in_progress")
    repo.create_check_run("lint", head, status="completed", conclusion="success")
    assert run.status == "in_progress" and run.conclusion is None
    run.edit(status="completed", conclusion="success")
    runs = repo.get_commit(head).get_check_runs(check_name="image-build")
    assert [(r.name, r.status, r.conclusion) for r in runs] == [("image-build", "completed", "success")]
    assert runs.totalCount == 1
    assert {r.name for r in repo.get_commit("feature").get_check_runs()} == {"image-build", "lint"}


def test_completed_check_run_needs_a_conclusion(repo: Repository, head: str) -> None:
    with pytest.raises(GithubException) as err:
        repo.create_check_run("x", head, status="completed")
    assert err.value.status == 422


def test_deployments_with_statuses_and_filters(repo: Repository, head: str) -> None:
    deployment = repo.create_deployment(
        "feature", environment="pr-1/web", description="routing header", required_contexts=[], auto_merge=False
    )
    assert deployment.sha == head and deployment.environment == "pr-1/web"
    deployment.create_status("in_progress", description="starting")
    deployment.create_status("success", environment_url="http://web-pr1", description="ready")
    assert [s.state for s in deployment.get_statuses()] == ["success", "in_progress"]
    assert [d.id for d in repo.get_deployments(environment="pr-1/web")] == [deployment.id]
    assert list(repo.get_deployments(environment="pr-2/web")) == []
    assert [d.id for d in repo.get_deployments(sha=head)] == [deployment.id]


def test_new_successful_deployment_makes_the_previous_inactive(repo: Repository, head: str) -> None:
    old = repo.create_deployment("feature", environment="pr-1/web", required_contexts=[])
    old.create_status("success")
    new = repo.create_deployment("feature", environment="pr-1/web", required_contexts=[])
    new.create_status("success")
    assert [s.state for s in old.get_statuses()] == ["inactive", "success"]
    assert [s.state for s in new.get_statuses()] == ["success"]


def test_deployment_refused_while_commit_statuses_fail(repo: Repository, head: str) -> None:
    repo.get_commit(head).create_status("failure", context="ci")
    with pytest.raises(GithubException) as err:
        repo.create_deployment("feature", environment="pr-1/web")
    assert err.value.status == 409
    assert repo.create_deployment("feature", environment="pr-1/web", required_contexts=[]).sha == head


def test_sticky_comment_created_edited_and_deleted(repo: Repository, head: str) -> None:
    pr = repo.get_pull(1)
    comment = pr.create_issue_comment("environments: none yet")
    comment.edit("environments: web-pr1")
    (listed,) = list(pr.get_issue_comments())
    assert listed.id == comment.id and listed.body == "environments: web-pr1"
    assert repo.get_pull(1).comments == 1
    comment.delete()
    assert list(pr.get_issue_comments()) == []


def test_others_cannot_edit_my_comment_or_push_statuses(gh: GitHubApiServer, repo: Repository, head: str) -> None:
    comment = repo.get_pull(1).create_issue_comment("mine")
    bob_repo = client(gh, BOB).get_repo("alice/shop")
    with pytest.raises(GithubException) as err:
        bob_repo.get_issue(1).get_comment(comment.id).edit("theirs")
    assert err.value.status == 403
    with pytest.raises(GithubException) as err:
        bob_repo.get_commit(head).create_status("success")
    assert err.value.status == 403
