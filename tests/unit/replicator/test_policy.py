"""Policy: each skip reason, the cap keeping the most recently updated, the keep label."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from replicator.origin_config import OriginConfig
from replicator.policy import (
    Gated,
    Hold,
    HoldReason,
    Selection,
    Skip,
    SkipReason,
    apply_image_gate,
    select_pull_requests,
)
from replicator.pull_request import PullRequest
from replicator.repository import Repository

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CONFIG = OriginConfig(repository=Repository("github.com", "org", "repo"))


def pr(number: int = 1, **fields: Any) -> PullRequest:
    base = PullRequest(number=number, head_sha="a" * 40, head_ref="feature", base_ref="main", updated_at=NOW)
    return dataclasses.replace(base, **fields)


def config(**fields: Any) -> OriginConfig:
    return dataclasses.replace(CONFIG, **fields)


@pytest.mark.parametrize(
    ("pull", "cfg", "reason"),
    [
        (pr(state="closed"), config(), SkipReason.CLOSED),
        (pr(draft=True), config(), SkipReason.DRAFT),
        (pr(is_fork=True), config(), SkipReason.FORK),
        (pr(base_ref="develop"), config(base_branches=("main", "release/*")), SkipReason.BASE_BRANCH),
        (pr(labels=frozenset({"WIP"})), config(excluded_labels=frozenset({"wip"})), SkipReason.EXCLUDED_LABEL),
        (
            pr(labels=frozenset({"bug"})),
            config(required_labels=frozenset({"preview"})),
            SkipReason.MISSING_REQUIRED_LABEL,
        ),
        (pr(labels=frozenset()), config(required_labels=frozenset({"preview"})), SkipReason.MISSING_REQUIRED_LABEL),
        (pr(updated_at=NOW - timedelta(days=4)), config(idle_expiry=timedelta(days=3)), SkipReason.IDLE),
        (
            pr(updated_at=NOW, last_commit_at=NOW - timedelta(hours=73)),
            config(idle_expiry=timedelta(hours=72)),
            SkipReason.IDLE,
        ),
        (pr(draft=True, is_fork=True), config(), SkipReason.DRAFT),
        (
            pr(labels=frozenset({"preview", "wip"})),
            config(required_labels=frozenset({"preview"}), excluded_labels=frozenset({"wip"})),
            SkipReason.EXCLUDED_LABEL,
        ),
    ],
    ids=[
        "closed",
        "draft",
        "fork",
        "base-branch",
        "excluded-label-any-case",
        "missing-required-label",
        "no-labels",
        "idle-by-update",
        "idle-by-last-commit",
        "first-reason-wins",
        "exclusion-beats-requirement",
    ],
)
def test_each_skip_reason(pull: PullRequest, cfg: OriginConfig, reason: SkipReason) -> None:
    assert select_pull_requests([pull], cfg, now=NOW) == Selection(selected=(), skipped=(Skip(pull.number, reason),))
    assert str(reason) == reason.value  # reasons are plain strings for events and metric labels


@pytest.mark.parametrize(
    ("pull", "cfg"),
    [
        (pr(), config()),
        (pr(draft=True), config(include_drafts=True)),
        (pr(is_fork=True), config(include_forks=True)),
        (pr(base_ref="release/1.2"), config(base_branches=("main", "release/*"))),
        (pr(labels=frozenset({"Preview"})), config(required_labels=frozenset({"preview", "qa"}))),
        (pr(updated_at=NOW - timedelta(days=3)), config(idle_expiry=timedelta(days=3))),
        (
            pr(updated_at=NOW - timedelta(days=30), labels=frozenset({"keep"})),
            config(idle_expiry=timedelta(days=3), keep_label="Keep"),
        ),
        (pr(updated_at=None), config(idle_expiry=timedelta(days=3))),
    ],
    ids=[
        "defaults",
        "drafts-included",
        "forks-included",
        "base-glob",
        "any-required-label-any-case",
        "idle-boundary-not-expired",
        "keep-label-exempts-idle",
        "unknown-activity-not-expired",
    ],
)
def test_selected(pull: PullRequest, cfg: OriginConfig) -> None:
    assert select_pull_requests([pull], cfg, now=NOW).selected == (pull,)


def test_cap_keeps_the_most_recently_updated_and_reports_the_rest() -> None:
    prs = [
        pr(1, updated_at=NOW - timedelta(hours=1)),
        pr(2, updated_at=NOW - timedelta(hours=5)),
        pr(3, updated_at=NOW - timedelta(minutes=1)),
        pr(4, updated_at=None),
        pr(5, updated_at=NOW - timedelta(hours=5)),
        pr(6, draft=True, updated_at=NOW),
    ]
    selection = select_pull_requests(prs, config(max_environments=3), now=NOW)
    assert [p.number for p in selection.selected] == [1, 3, 5]  # 5 beats 2 on a tie: newer PR
    assert selection.skipped == (
        Skip(2, SkipReason.OVER_LIMIT),
        Skip(4, SkipReason.OVER_LIMIT),
        Skip(6, SkipReason.DRAFT),  # skipped by policy before the cap: does not take a slot
    )


@pytest.mark.parametrize(("cap", "kept"), [(None, 3), (0, 0), (3, 3), (10, 3)], ids=["none", "zero", "exact", "above"])
def test_cap_bounds(cap: int | None, kept: int) -> None:
    selection = select_pull_requests([pr(1), pr(2), pr(3)], config(max_environments=cap), now=NOW)
    assert len(selection.selected) == kept
    assert [s.reason for s in selection.skipped] == [SkipReason.OVER_LIMIT] * (3 - kept)


def test_duplicates_counted_once_and_results_ordered_by_number() -> None:
    selection = select_pull_requests([pr(9), pr(2), pr(9), pr(5, draft=True)], config(), now=NOW)
    assert [p.number for p in selection.selected] == [2, 9]
    assert selection.skipped == (Skip(5, SkipReason.DRAFT),)


OLD, NEW = "0" * 40, "1" * 40


@pytest.mark.parametrize(
    ("state", "deployed_sha", "ready_sha", "held", "skipped"),
    [
        (True, None, NEW, (), ()),
        (True, OLD, NEW, (), ()),
        (None, None, None, (), (Skip(7, SkipReason.IMAGE_PENDING),)),
        (False, None, None, (), (Skip(7, SkipReason.IMAGE_FAILED),)),
        (None, OLD, OLD, (Hold(7, HoldReason.IMAGE_PENDING, serving_sha=OLD, head_sha=NEW),), ()),
        (False, OLD, OLD, (Hold(7, HoldReason.IMAGE_FAILED, serving_sha=OLD, head_sha=NEW),), ()),
        (None, NEW, NEW, (), ()),
    ],
    ids=[
        "passed-new-clone",
        "passed-moves-clone",
        "pending-no-clone-yet",
        "failed-no-clone-yet",
        "pending-keeps-previous-commit",
        "failed-keeps-previous-commit",
        "already-on-head",
    ],
)
def test_image_gate(
    state: bool | None,
    deployed_sha: str | None,
    ready_sha: str | None,
    held: tuple[Hold, ...],
    skipped: tuple[Skip, ...],
) -> None:
    head = pr(7, head_sha=NEW, head_ref="feature")
    deployed = {} if deployed_sha is None else {7: pr(7, head_sha=deployed_sha, head_ref="feature")}
    gate = {} if state is None else {NEW: state}
    result = apply_image_gate([head], config(image_gate="build"), gate=gate, deployed=deployed)
    assert [p.head_sha for p in result.ready] == ([] if ready_sha is None else [ready_sha])
    assert (result.held, result.skipped) == (held, skipped)


def test_no_gate_configured_passes_everything_through() -> None:
    prs = (pr(1), pr(2))
    assert apply_image_gate(prs, config(), gate={}, deployed={}) == Gated(ready=prs, held=(), skipped=())
