"""Which pull requests get an environment, and why the others do not.

A pure function of the pull requests, the origin's configuration and the current time. Every
open pull request ends up either selected or skipped with a reason, so the controller can report
each skip (Event, metric) instead of dropping it silently. Checks run in a fixed order and the
first failing one is the reason; the environment cap is applied last, to the survivors only.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from replicator.origin_config import OriginConfig
from replicator.pull_request import PullRequest


class SkipReason(enum.StrEnum):
    CLOSED = "closed"
    DRAFT = "draft"
    FORK = "fork"
    BASE_BRANCH = "base-branch"
    EXCLUDED_LABEL = "excluded-label"
    MISSING_REQUIRED_LABEL = "missing-required-label"
    IDLE = "idle"
    OVER_LIMIT = "over-limit"
    IMAGE_PENDING = "image-pending"
    """The image gate has not succeeded on the head yet and there is no earlier commit to keep serving."""
    IMAGE_FAILED = "image-failed"
    """The image gate failed on the head and there is no earlier commit to keep serving."""


class HoldReason(enum.StrEnum):
    IMAGE_PENDING = "image-pending"
    IMAGE_FAILED = "image-failed"


@dataclass(frozen=True)
class Skip:
    number: int
    reason: SkipReason


@dataclass(frozen=True)
class Selection:
    selected: tuple[PullRequest, ...]
    """Pull requests that get an environment, in ascending PR number."""
    skipped: tuple[Skip, ...]
    """Every other pull request with the first reason it failed, in ascending PR number."""


def _folded(labels: Iterable[str]) -> frozenset[str]:
    # GitHub label names are unique case-insensitively, so match them that way.
    return frozenset(label.casefold() for label in labels)


def last_activity(pr: PullRequest) -> datetime | None:
    """The head commit's time when known, else the PR's last update (which any activity moves)."""
    return pr.last_commit_at or pr.updated_at


def is_kept(pr: PullRequest, config: OriginConfig) -> bool:
    """The pull request carries the origin's keep label: idle expiry never removes its environment."""
    return config.keep_label is not None and config.keep_label.casefold() in _folded(pr.labels)


def _reason(pr: PullRequest, config: OriginConfig, *, now: datetime) -> SkipReason | None:
    labels = _folded(pr.labels)
    if not pr.is_open:
        return SkipReason.CLOSED
    if pr.draft and not config.include_drafts:
        return SkipReason.DRAFT
    if pr.is_fork and not config.include_forks:
        return SkipReason.FORK
    if config.base_branches and not any(fnmatch.fnmatchcase(pr.base_ref, p) for p in config.base_branches):
        return SkipReason.BASE_BRANCH
    if labels & _folded(config.excluded_labels):
        return SkipReason.EXCLUDED_LABEL
    if config.required_labels and not labels & _folded(config.required_labels):
        return SkipReason.MISSING_REQUIRED_LABEL
    if config.idle_expiry is not None and not is_kept(pr, config):
        active = last_activity(pr)
        if active is not None and now - active > config.idle_expiry:
            return SkipReason.IDLE
    return None


def _recency(pr: PullRequest) -> tuple[float, int]:
    # Most recently updated first; a PR without a timestamp counts as oldest; ties: newer PR first.
    stamp = pr.updated_at.timestamp() if pr.updated_at is not None else float("-inf")
    return (-stamp, -pr.number)


def select_pull_requests(prs: Iterable[PullRequest], config: OriginConfig, *, now: datetime) -> Selection:
    """Apply the origin's policy. ``now`` must be timezone-aware, like the PRs' timestamps."""
    eligible: list[PullRequest] = []
    skipped: list[Skip] = []
    seen: set[int] = set()
    for pr in prs:
        if pr.number in seen:
            continue
        seen.add(pr.number)
        reason = _reason(pr, config, now=now)
        if reason is None:
            eligible.append(pr)
        else:
            skipped.append(Skip(pr.number, reason))
    if config.max_environments is not None and len(eligible) > config.max_environments:
        ranked = sorted(eligible, key=_recency)
        eligible = ranked[: config.max_environments]
        skipped.extend(Skip(pr.number, SkipReason.OVER_LIMIT) for pr in ranked[config.max_environments :])
    return Selection(
        selected=tuple(sorted(eligible, key=lambda p: p.number)),
        skipped=tuple(sorted(skipped, key=lambda s: s.number)),
    )


@dataclass(frozen=True)
class Hold:
    """A clone kept on an earlier commit because the head's image is not known to exist yet."""

    number: int
    reason: HoldReason
    serving_sha: str
    head_sha: str


@dataclass(frozen=True)
class Gated:
    ready: tuple[PullRequest, ...]
    """Pull requests to clone, each carrying the commit to run (the head, or the one held)."""
    held: tuple[Hold, ...]
    """Clones kept on their current commit while the head's image is pending or failed."""
    skipped: tuple[Skip, ...]
    """Pull requests without a clone and without a successful image: nothing is created yet."""


def apply_image_gate(
    prs: Iterable[PullRequest],
    config: OriginConfig,
    *,
    gate: Mapping[str, bool | None],
    deployed: Mapping[int, PullRequest],
) -> Gated:
    """Never point a clone at an image that may not exist.

    ``gate`` maps a head SHA to the state of the configured check run or commit status on it:
    ``True`` succeeded, ``False`` failed, ``None``/absent not finished. ``deployed`` maps a PR
    number to what its existing clone runs (see :func:`replicator.desired.deployed_pull_requests`).
    Without a configured gate every PR is ready as it is. With one, a PR whose head passed is
    ready; otherwise its clone keeps running the commit it runs now (the PR is returned with that
    commit), and a PR without a clone is skipped until its image is ready.
    """
    prs = tuple(prs)
    if config.image_gate is None:
        return Gated(ready=prs, held=(), skipped=())
    ready: list[PullRequest] = []
    held: list[Hold] = []
    skipped: list[Skip] = []
    for pr in prs:
        state = gate.get(pr.head_sha)
        if state is True:
            ready.append(pr)
            continue
        current = deployed.get(pr.number)
        if current is not None and current.head_sha == pr.head_sha:
            # Already running this head (deployed before the gate was configured, or gate reset).
            ready.append(pr)
            continue
        reason = HoldReason.IMAGE_FAILED if state is False else HoldReason.IMAGE_PENDING
        if current is None:
            skipped.append(Skip(pr.number, SkipReason(reason.value)))
            continue
        ready.append(replace(pr, head_sha=current.head_sha, head_ref=current.head_ref or pr.head_ref))
        held.append(Hold(pr.number, reason, serving_sha=current.head_sha, head_sha=pr.head_sha))
    return Gated(ready=tuple(ready), held=tuple(held), skipped=tuple(skipped))
