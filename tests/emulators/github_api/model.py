"""The emulator's state as plain dataclasses: users, repositories, commits, pulls and their satellites.

Nothing here knows about HTTP or JSON. Ids come from one global counter (GitHub ids are unique per
type; one counter keeps them unique overall, which is stricter and harmless). Times are floats
(epoch seconds) so that ordering by ``updated_at`` is stable even within one second; the
serializers round them to GitHub's second-resolution ISO 8601 form.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_ids = itertools.count(1000)


def next_id() -> int:
    return next(_ids)


def now() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def http_date(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def node_id(kind: str, ident: int) -> str:
    """The legacy global node id GitHub still returns in REST: base64("0<len>:<Type><id>")."""
    return base64.b64encode(f"0{len(kind)}:{kind}{ident}".encode()).decode()


_sha_counter = itertools.count(1)


def make_sha(*parts: str) -> str:
    """A 40-hex commit sha, unique per call, derived from the content and a counter."""
    return hashlib.sha1("\0".join((*parts, str(next(_sha_counter)))).encode()).hexdigest()


@dataclass
class User:
    login: str
    id: int = field(default_factory=next_id)
    type: str = "User"  # or "Organization"
    members: set[str] = field(default_factory=set)  # organizations only


@dataclass
class Commit:
    sha: str
    message: str
    tree: str
    parents: list[str]
    author: str
    created_at: float
    files: dict[str, bytes] = field(default_factory=dict)
    """The whole snapshot, path -> content (flat; directories are implied by the paths)."""


def blob_sha(content: bytes) -> str:
    """Git's blob id, as GitHub's contents API reports it: sha1 of ``blob <size>\\0<content>``."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Label:
    name: str
    color: str = "ededed"
    description: str | None = None
    default: bool = False
    id: int = field(default_factory=next_id)


@dataclass
class Comment:
    body: str
    user: User
    issue_number: int
    id: int = field(default_factory=next_id)
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class Pull:
    number: int
    title: str
    body: str | None
    user: User
    head_repo: Repo
    head_ref: str
    head_sha: str
    base_ref: str
    draft: bool = False
    state: str = "open"
    merged: bool = False
    merged_at: float | None = None
    merged_by: User | None = None
    merge_commit_sha: str | None = None
    closed_at: float | None = None
    maintainer_can_modify: bool = False
    labels: list[Label] = field(default_factory=list)
    id: int = field(default_factory=next_id)
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)

    def touch(self) -> None:
        self.updated_at = max(now(), self.updated_at + 1e-6)


@dataclass
class Status:
    state: str
    context: str
    description: str | None
    target_url: str | None
    creator: User
    id: int = field(default_factory=next_id)
    created_at: float = field(default_factory=now)


@dataclass
class CheckRun:
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    details_url: str | None
    external_id: str | None
    output: dict[str, Any]
    id: int = field(default_factory=next_id)
    started_at: float = field(default_factory=now)
    completed_at: float | None = None


@dataclass
class DeploymentStatus:
    state: str
    description: str
    environment_url: str
    log_url: str
    creator: User
    environment: str
    id: int = field(default_factory=next_id)
    created_at: float = field(default_factory=now)


@dataclass
class Deployment:
    sha: str
    ref: str
    task: str
    environment: str
    description: str | None
    payload: Any
    creator: User
    transient_environment: bool
    production_environment: bool
    statuses: list[DeploymentStatus] = field(default_factory=list)
    id: int = field(default_factory=next_id)
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)


@dataclass
class Hook:
    url: str
    secret: str | None
    content_type: str
    events: list[str]
    active: bool = True
    id: int = field(default_factory=next_id)
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)

    def wants(self, event: str) -> bool:
        return self.active and (event == "ping" or "*" in self.events or event in self.events)


@dataclass
class Repo:
    owner: User
    name: str
    private: bool
    description: str | None = None
    default_branch: str = "main"
    parent: Repo | None = None
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    collaborators: set[str] = field(default_factory=set)
    labels: dict[str, Label] = field(default_factory=dict)
    pulls: dict[int, Pull] = field(default_factory=dict)
    comments: dict[int, Comment] = field(default_factory=dict)
    statuses: dict[str, list[Status]] = field(default_factory=dict)
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    deployments: dict[int, Deployment] = field(default_factory=dict)
    hooks: dict[int, Hook] = field(default_factory=dict)
    forks: list[Repo] = field(default_factory=list)
    next_number: int = 1
    id: int = field(default_factory=next_id)
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    pushed_at: float = field(default_factory=now)

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"

    def can_read(self, login: str | None) -> bool:
        return not self.private or self.can_push(login)

    def can_push(self, login: str | None) -> bool:
        if login is None:
            return False
        return login == self.owner.login or login in self.collaborators or login in self.owner.members

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True when ``ancestor`` is reachable from ``descendant`` through parents (or equal)."""
        seen: set[str] = set()
        todo = [descendant]
        while todo:
            sha = todo.pop()
            if sha == ancestor:
                return True
            if sha in seen or sha not in self.commits:
                continue
            seen.add(sha)
            todo.extend(self.commits[sha].parents)
        return False

    def reachable(self, start: str) -> set[str]:
        out: set[str] = set()
        todo = [start]
        while todo:
            sha = todo.pop()
            if sha in out or sha not in self.commits:
                continue
            out.add(sha)
            todo.extend(self.commits[sha].parents)
        return out

    def commits_between(self, base: str, head: str) -> int:
        """How many commits reachable from ``head`` are not reachable from ``base``."""
        return len(self.reachable(head) - self.reachable(base))

    def history(self, start: str) -> list[Commit]:
        """Commits reachable from ``start``, newest first but never a parent before its child
        (``git log --date-order``), as ``GET /commits`` lists them."""
        import heapq

        shas = self.reachable(start)
        children = dict.fromkeys(shas, 0)
        for sha in shas:
            for parent in self.commits[sha].parents:
                if parent in children:
                    children[parent] += 1
        ready = [(-self.commits[start].created_at, start)] if start in shas else []
        out: list[Commit] = []
        while ready:
            _, sha = heapq.heappop(ready)
            out.append(self.commits[sha])
            for parent in self.commits[sha].parents:
                if parent in children:
                    children[parent] -= 1
                    if children[parent] == 0:
                        heapq.heappush(ready, (-self.commits[parent].created_at, parent))
        return out
