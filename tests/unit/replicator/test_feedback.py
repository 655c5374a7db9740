"""Feedback on GitHub: which state each clone shows, the comment text, and writing only differences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from controller_common import contract
from replicator.feedback import (
    FAILURE,
    IN_PROGRESS,
    SUCCESS,
    FeedbackReconciler,
    comment_body,
    environments_of,
    feedback_key,
    rollout_state,
)
from replicator.repository import Repository

URL = "https://github.com/org/shop"
KEY = feedback_key(URL, 7)


def _clone(origin: str, *, sha: str = "a" * 40, status: dict[str, Any] | None = None) -> dict[str, Any]:
    name = f"{origin}-pr7"
    return {
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "generation": 2,
            "labels": {
                contract.MANAGED_BY_LABEL: contract.REPLICATOR_MANAGER,
                contract.PULL_REQUEST_LABEL: "7",
                contract.CLONE_LABEL: name,
            },
            "annotations": {
                contract.CLONE_REPOSITORY_ANNOTATION: URL,
                contract.CLONE_ORIGIN_ANNOTATION: origin,
                contract.CLONE_HEAD_SHA_ANNOTATION: sha,
            },
        },
        "spec": {"replicas": 1},
        "status": status if status is not None else _available(),
    }


def _available() -> dict[str, Any]:
    return {
        "observedGeneration": 2,
        "replicas": 1,
        "updatedReplicas": 1,
        "availableReplicas": 1,
        "conditions": [{"type": "Available", "status": "True"}],
    }


def _service(origin: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{origin}-pr7",
            "namespace": "shop",
            "labels": {contract.CLONE_LABEL: f"{origin}-pr7"},
            "annotations": {contract.ORIGIN_SERVICE_ANNOTATION: origin},
        }
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (_available(), SUCCESS),
        ({"observedGeneration": 1, "conditions": [{"type": "Available", "status": "True"}]}, IN_PROGRESS),
        ({"observedGeneration": 2, "updatedReplicas": 0, "conditions": []}, IN_PROGRESS),
        (
            {"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]},
            FAILURE,
        ),
        ({"conditions": [{"type": "ReplicaFailure", "status": "True", "message": "quota"}]}, FAILURE),
        (_available() | {"replicas": 2}, IN_PROGRESS),
        (_available() | {"availableReplicas": 0}, IN_PROGRESS),
    ],
    ids=[
        "available",
        "old-generation",
        "not-updated",
        "deadline",
        "replica-failure",
        "old-pods-still-serving",
        "new-pods-not-available",
    ],
)
def test_rollout_state(status: dict[str, Any], expected: str) -> None:
    assert rollout_state(_clone("web", status=status))[0] == expected


def test_environments_and_comment_name_every_clone_with_its_header() -> None:
    envs = environments_of(KEY, [_clone("web"), _clone("api"), _clone("other") | {"metadata": {}}], [_service("web")])
    assert [(e.origin, e.name, e.state) for e in envs] == [("api", "pr-7/api", SUCCESS), ("web", "pr-7/web", SUCCESS)]
    assert contract.routing_header("web", "shop") in envs[1].description
    body = comment_body(envs)
    assert body.startswith(contract.PR_COMMENT_MARKER) and "`api-pr7`" in body and "curl" in body
    assert "no environment" in comment_body([])


@dataclass
class FakeGitHub:
    deployments: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, str] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)

    def find_deployment(self, repository: Repository, environment: str, sha: str) -> int | None:
        found = [i for i, d in self.deployments.items() if d["environment"] == environment and d["sha"] == sha]
        return max(found) if found else None

    def latest_deployment_status(self, repository: Repository, deployment_id: int) -> tuple[str, str] | None:
        statuses = self.deployments[deployment_id]["statuses"]
        return statuses[-1] if statuses else None

    def create_deployment(self, repository: Repository, *, sha: str, environment: str, description: str) -> int:
        self.writes.append(f"deploy {environment}")
        new_id = len(self.deployments) + 1
        self.deployments[new_id] = {"sha": sha, "environment": environment, "statuses": []}
        return new_id

    def create_deployment_status(
        self, repository: Repository, deployment_id: int, *, state: str, description: str
    ) -> None:
        self.writes.append(f"status {self.deployments[deployment_id]['environment']} {state}")
        self.deployments[deployment_id]["statuses"].append((state, description))

    def find_comment(self, repository: Repository, number: int, marker: str) -> tuple[int, str] | None:
        return next(((i, b) for i, b in self.comments.items() if marker in b), None)

    def recent_deployments(self, repository: Repository) -> list[tuple[int, str, str]]:
        return [(i, d["environment"], d["sha"]) for i, d in sorted(self.deployments.items(), reverse=True)]

    def create_comment(self, repository: Repository, number: int, body: str) -> int:
        self.writes.append("comment")
        self.comments[len(self.comments) + 1] = body
        return len(self.comments)

    def edit_comment(self, repository: Repository, comment_id: int, body: str) -> None:
        self.writes.append("edit")
        self.comments[comment_id] = body


@dataclass
class Cache:
    items: list[dict[str, Any]]

    def list(self) -> list[dict[str, Any]]:
        return self.items


def _reconciler(github: FakeGitHub, deployments: list[dict[str, Any]]) -> FeedbackReconciler:
    return FeedbackReconciler(
        publisher=github,
        deployments=Cache(deployments),
        services=Cache([_service("web")]),
        github_deployments=True,
        pr_comment=True,
    )


def test_writes_only_differences_and_a_restart_reads_back_instead_of_writing() -> None:
    github = FakeGitHub()
    clones = [_clone("web", status={"conditions": []})]
    reconcile = _reconciler(github, clones)
    reconcile(KEY)
    assert github.writes == ["deploy pr-7/web", "status pr-7/web in_progress", "comment"]
    reconcile(KEY)
    assert len(github.writes) == 3, "nothing changed, nothing written"
    clones[0] = _clone("web")
    reconcile(KEY)
    assert github.writes[3:] == ["status pr-7/web success", "edit"]

    restarted = _reconciler(github, clones)
    restarted(KEY)
    assert len(github.writes) == 5, "a new process finds the deployment, its status and the comment"

    clones.clear()
    restarted(KEY)
    assert github.writes[5:] == ["status pr-7/web inactive", "edit"]
    assert len(github.comments) == 1


def test_same_origin_name_in_two_namespaces_gets_two_environments() -> None:
    other = _clone("web")
    other["metadata"]["namespace"] = "staging"
    envs = environments_of(KEY, [_clone("web"), other, _clone("api")], [])
    assert [e.name for e in envs] == ["pr-7/api", "pr-7/web.shop", "pr-7/web.staging"]


def test_an_environment_whose_clone_went_away_while_no_replicator_ran_is_marked_inactive() -> None:
    github = FakeGitHub()
    clones = [_clone("web"), _clone("api")]
    _reconciler(github, clones)(KEY)
    assert sorted(w for w in github.writes if w.startswith("status")) == [
        "status pr-7/api in_progress",
        "status pr-7/api success",
        "status pr-7/web in_progress",
        "status pr-7/web success",
    ]
    github.deployments[99] = {"sha": "b" * 40, "environment": "production", "statuses": [("success", "")]}
    clones.remove(next(c for c in clones if c["metadata"]["name"] == "api-pr7"))  # gone while we were down
    github.writes.clear()

    restarted = _reconciler(github, clones)
    swept: list[str] = []
    restarted.sweep([Repository("github.com", "org", "shop")], swept.append)
    assert swept == [KEY], "the sweep finds the PR from GitHub's deployments alone"
    restarted(KEY)
    assert github.writes == ["status pr-7/api inactive", "edit"], "web untouched, api inactive, the comment says so"
    github.writes.clear()
    restarted(KEY)
    assert github.writes == [], "and a steady state writes nothing"
    assert github.deployments[99]["statuses"] == [("success", "")], "not ours: never touched"


def test_a_clone_deleted_before_a_new_process_published_anything_still_goes_inactive() -> None:
    github = FakeGitHub()
    clones = [_clone("web")]
    _reconciler(github, clones)(KEY)
    clones.clear()  # e.g. its PR closed while no replicator ran: the new process deletes the clone first
    github.writes.clear()
    _reconciler(github, clones)(KEY)
    assert github.writes == ["status pr-7/web inactive", "edit"]
