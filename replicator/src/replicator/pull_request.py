"""A pull request as the replicator sees it: the few fields policy and clones depend on.

Built from GitHub's REST pull-request object (the same shape in list responses and in
``pull_request`` webhook payloads), so the GitHub boundary hands the pure code a small frozen
value instead of a client model. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class PullRequest:
    number: int
    head_sha: str
    head_ref: str
    base_ref: str
    state: str = "open"
    draft: bool = False
    labels: frozenset[str] = frozenset()
    is_fork: bool = False
    updated_at: datetime | None = None
    last_commit_at: datetime | None = None
    """When the head commit was made, if the source knows it; idle expiry falls back to ``updated_at``."""
    title: str = ""
    html_url: str = ""

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    @property
    def short_sha(self) -> str:
        return self.head_sha[:7]


def parse_timestamp(value: str | None) -> datetime | None:
    """GitHub's ISO-8601 timestamps (``2019-05-15T15:20:33Z``) as aware datetimes; ``None`` stays."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _repo_full_name(side: Mapping[str, Any] | None) -> str | None:
    repo = (side or {}).get("repo")
    if not repo:
        return None
    name = repo.get("full_name")
    return name.lower() if isinstance(name, str) else None


def pull_request_from_api(obj: Mapping[str, Any], *, last_commit_at: datetime | None = None) -> PullRequest:
    """Build a :class:`PullRequest` from a GitHub REST pull object.

    A pull request is from a fork when its head repository differs from its base repository,
    or when the head repository is gone (``head.repo`` is null: the fork was deleted), because
    then we cannot tell whose code it is. ``last_commit_at`` is not in the pull object; a
    caller that fetched the head commit passes it in.
    """
    head = obj.get("head") or {}
    base = obj.get("base") or {}
    head_repo = _repo_full_name(head)
    base_repo = _repo_full_name(base)
    labels = frozenset(
        label["name"] for label in obj.get("labels") or () if isinstance(label, Mapping) and label.get("name")
    )
    return PullRequest(
        number=int(obj["number"]),
        head_sha=str(head.get("sha") or ""),
        head_ref=str(head.get("ref") or ""),
        base_ref=str(base.get("ref") or ""),
        state=str(obj.get("state") or "open"),
        draft=bool(obj.get("draft")),
        labels=labels,
        is_fork=head_repo is None or head_repo != base_repo,
        updated_at=parse_timestamp(obj.get("updated_at")),
        last_commit_at=last_commit_at,
        title=str(obj.get("title") or ""),
        html_url=str(obj.get("html_url") or ""),
    )
