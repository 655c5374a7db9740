"""A GitHub pull object becomes a small PullRequest value, forks detected from the repositories."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from replicator.pull_request import PullRequest, parse_timestamp, pull_request_from_api

ACTIONS = [
    "opened",
    "closed",
    "reopened",
    "synchronize",
    "labeled",
    "unlabeled",
    "converted_to_draft",
    "ready_for_review",
]


def _payload(shared_dir: Path, action: str) -> dict[str, Any]:
    path = shared_dir / "fixtures" / "github" / "webhooks" / "pull_request" / f"{action}.json"
    return json.loads(path.read_text())


@pytest.mark.parametrize("action", ACTIONS, ids=ACTIONS)
def test_every_webhook_fixture_parses_to_its_own_fields(shared_dir: Path, action: str) -> None:
    raw = _payload(shared_dir, action)["pull_request"]
    pr = pull_request_from_api(raw)
    assert pr.number == raw["number"]
    assert pr.head_sha == raw["head"]["sha"] and len(pr.short_sha) == 7
    assert pr.head_ref == raw["head"]["ref"]
    assert pr.base_ref == raw["base"]["ref"]
    assert pr.state == raw["state"]
    assert pr.draft is bool(raw["draft"])
    assert pr.labels == frozenset(label["name"] for label in raw["labels"])
    assert pr.updated_at == parse_timestamp(raw["updated_at"])
    assert pr.updated_at is not None and pr.updated_at.tzinfo is not None
    assert pr.html_url == raw["html_url"] and pr.title == raw["title"]
    assert pr.is_fork is False  # the fixtures are same-repository PRs


@pytest.mark.parametrize(
    ("action", "state", "draft"),
    [("closed", "closed", False), ("converted_to_draft", "open", True), ("opened", "open", False)],
    ids=["closed-is-not-open", "draft-flag", "opened"],
)
def test_fixture_state_and_draft(shared_dir: Path, action: str, state: str, draft: bool) -> None:
    pr = pull_request_from_api(_payload(shared_dir, action)["pull_request"])
    assert (pr.state, pr.draft, pr.is_open) == (state, draft, state == "open")


def _base_pull() -> dict[str, Any]:
    return {
        "number": 7,
        "state": "open",
        "draft": False,
        "labels": [{"name": "preview"}],
        "updated_at": "2026-01-02T03:04:05Z",
        "head": {"sha": "a" * 40, "ref": "feature/x", "repo": {"full_name": "org/repo"}},
        "base": {"ref": "main", "repo": {"full_name": "org/repo"}},
    }


@pytest.mark.parametrize(
    ("head_repo", "fork"),
    [
        ({"full_name": "org/repo"}, False),
        ({"full_name": "Org/Repo"}, False),
        ({"full_name": "someone/repo"}, True),
        (None, True),
    ],
    ids=["same-repo", "same-repo-other-case", "other-owner", "deleted-fork"],
)
def test_fork_detection(head_repo: dict[str, str] | None, fork: bool) -> None:
    raw = copy.deepcopy(_base_pull())
    raw["head"]["repo"] = head_repo
    assert pull_request_from_api(raw).is_fork is fork


def test_last_commit_time_is_passed_in_and_timestamps_are_aware() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    pr = pull_request_from_api(_base_pull(), last_commit_at=when)
    assert pr == PullRequest(
        number=7,
        head_sha="a" * 40,
        head_ref="feature/x",
        base_ref="main",
        labels=frozenset({"preview"}),
        updated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        last_commit_at=when,
    )
