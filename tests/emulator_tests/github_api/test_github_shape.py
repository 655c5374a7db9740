"""Objects are shaped like GitHub's: every key of the real webhook payloads exists in ours with
the same JSON type (where the real value is not null)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from github.Repository import Repository

from emulators.github_api import GitHubApiServer
from emulators.github_api.serializers import DETAIL_ONLY_KEYS

from .conftest import auth

pytestmark = pytest.mark.shared

ACTIONS = [
    "opened",
    "closed",
    "reopened",
    "synchronize",
    "labeled",
    "unlabeled",
    "ready_for_review",
    "converted_to_draft",
]


def json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}[type(value)]


def missing_or_mistyped(real: Any, ours: Any, where: str = "") -> list[str]:
    """Paths where ``ours`` lacks a key of ``real`` or holds another JSON type (nulls excepted)."""
    problems: list[str] = []
    if real is None or ours is None:
        return problems
    if json_type(real) != json_type(ours):
        return [f"{where}: {json_type(ours)} instead of {json_type(real)}"]
    if isinstance(real, dict):
        for key, value in real.items():
            if key not in ours:
                problems.append(f"{where}.{key}: missing")
            else:
                problems += missing_or_mistyped(value, ours[key], f"{where}.{key}")
    elif isinstance(real, list) and real and ours:
        problems += missing_or_mistyped(real[0], ours[0], f"{where}[0]")
    return problems


def fixture(shared_dir: Path, action: str) -> dict[str, Any]:
    return json.loads((shared_dir / "fixtures/github/webhooks/pull_request" / f"{action}.json").read_text())


@pytest.fixture
def labeled_pull(gh: GitHubApiServer, repo: Repository) -> dict[str, Any]:
    gh.push("alice", "shop", "feature")
    pr = repo.create_pull(base="main", head="feature", title="t", body="b")
    pr.add_to_labels("bug")
    answer = requests.get(f"{gh.api_url}/repos/alice/shop/pulls/1", headers=auth())
    return answer.json()


@pytest.mark.parametrize("action", ACTIONS)
def test_rest_pull_has_every_key_of_the_real_payload(
    shared_dir: Path, labeled_pull: dict[str, Any], action: str
) -> None:
    real = fixture(shared_dir, action)["pull_request"]
    assert missing_or_mistyped(real, labeled_pull, "pull_request") == []


def test_list_items_have_the_simple_shape_without_detail_keys(
    shared_dir: Path, gh: GitHubApiServer, labeled_pull: dict[str, Any]
) -> None:
    """GitHub's list items ("pull-request-simple") lack merged, mergeable, commits, ... as here."""
    (listed,) = requests.get(f"{gh.api_url}/repos/alice/shop/pulls", headers=auth()).json()
    real = fixture(shared_dir, "opened")["pull_request"]
    simple = {k: v for k, v in real.items() if k not in DETAIL_ONLY_KEYS}
    assert missing_or_mistyped(simple, listed, "pull_request") == []
    assert [k for k in DETAIL_ONLY_KEYS if k in listed] == []
    assert set(real) - set(listed) == set(DETAIL_ONLY_KEYS)


def test_repository_user_and_label_objects_match(shared_dir: Path, gh: GitHubApiServer, labeled_pull: dict) -> None:
    real = fixture(shared_dir, "labeled")
    repo_obj = requests.get(f"{gh.api_url}/repos/alice/shop", headers=auth()).json()
    me = requests.get(f"{gh.api_url}/users/alice", headers=auth()).json()
    assert missing_or_mistyped(real["repository"], repo_obj, "repository") == []
    assert missing_or_mistyped(real["sender"], me, "sender") == []
    assert missing_or_mistyped(real["label"], labeled_pull["labels"][0], "label") == []


def test_webhook_payloads_have_every_top_level_key(shared_dir: Path, gh: GitHubApiServer, repo: Repository) -> None:
    from .test_github_webhooks import Receiver

    rx = Receiver()
    try:
        repo.create_hook("web", {"url": rx.url, "content_type": "json"}, ["pull_request"])
        sha = gh.push("alice", "shop", "feature")
        pr = repo.create_pull(base="main", head="feature", title="t")
        gh.push("alice", "shop", "feature")
        pr.add_to_labels("bug")
        assert sha and gh.wait_for_webhooks()
        by_action = {r.payload["action"]: r.payload for r in rx.received if r.event == "pull_request"}
        for action in ("opened", "synchronize", "labeled"):
            real = fixture(shared_dir, action)
            real.pop("installation", None)  # only sent to GitHub Apps
            assert missing_or_mistyped(real, by_action[action], action) == []
    finally:
        rx.httpd.shutdown()
        rx.httpd.server_close()


def test_ids_node_ids_and_timestamps_look_real(labeled_pull: dict[str, Any]) -> None:
    import base64
    import re

    assert base64.b64decode(labeled_pull["node_id"]).decode() == f"011:PullRequest{labeled_pull['id']}"
    for key in ("created_at", "updated_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labeled_pull[key])
    assert labeled_pull["html_url"].endswith("/alice/shop/pull/1")
    assert labeled_pull["mergeable_state"] == "clean" and labeled_pull["merged"] is False


@pytest.mark.parametrize(
    ("real", "ours", "problems"),
    [
        ({"a": 1}, {"a": 2}, []),
        ({"a": 1}, {}, [".a: missing"]),
        ({"a": 1}, {"a": "1"}, [".a: string instead of number"]),
        ({"a": None}, {"a": "x"}, []),
        ({"a": [{"b": True}]}, {"a": [{}]}, [".a[0].b: missing"]),
    ],
    ids=["same", "missing", "mistyped", "null-real", "nested-list"],
)
def test_the_shape_comparison_itself(real: Any, ours: Any, problems: list[str]) -> None:
    assert missing_or_mistyped(real, ours) == problems
