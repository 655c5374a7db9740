"""Poll each opted-in repository's open pull requests: the replicator's source of truth.

One list per repository per interval, however many origins name it (a monorepo serves many
Deployments), with conditional requests so an unchanged list is a free 304. When a repository's
list changes, or a fetch fails, every origin naming it is enqueued; reconciles then read the last
known list from here and never call GitHub themselves. A webhook or a reconcile that finds no
list yet asks for an immediate refresh. An exhausted rate limit pauses all polling until GitHub's
reset time instead of spinning.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from replicator.github_source import GitHubError, Listing, RateLimited
from replicator.pull_request import PullRequest
from replicator.repository import Repository

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RepositoryState:
    """The last answer for one repository: its open pull requests, or the error that replaced them."""

    pull_requests: tuple[PullRequest, ...] | None
    error: GitHubError | None = None


class PullRequestLister(Protocol):
    """What the poller needs from GitHub (``GitHubSource`` in production)."""

    def open_pull_requests(self, repository: Repository) -> Listing: ...


class RepositoryPoller:
    def __init__(
        self,
        *,
        source: PullRequestLister,
        interval: float,
        origins_by_repository: Callable[[], Mapping[Repository, Sequence[str]]],
        enqueue: Callable[[str], None],
        on_fetch: Callable[[Repository, Listing | None, GitHubError | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._interval = interval
        self._origins_by_repository = origins_by_repository
        self._enqueue = enqueue
        self._on_fetch = on_fetch
        self._clock = clock
        self._states: dict[Repository, RepositoryState] = {}
        self._due: dict[Repository, float] = {}
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def state(self, repository: Repository) -> RepositoryState | None:
        with self._lock:
            return self._states.get(repository)

    def request_refresh(self, repository: Repository) -> None:
        """Fetch ``repository`` at the next opportunity (webhook delivery, newly opted-in origin)."""
        with self._lock:
            self._due[repository] = 0.0
        self._wake.set()

    def poll_once(self) -> None:
        """Fetch every repository that is due; enqueue the origins of those that changed."""
        origins = self._origins_by_repository()
        now = self._clock()
        with self._lock:
            for gone in set(self._states) - set(origins):
                self._states.pop(gone, None)
                self._due.pop(gone, None)
            due = [r for r in origins if self._due.get(r, 0.0) <= now]
        if now < self._paused_until:
            return
        for repository in sorted(due, key=lambda r: r.full_name):
            if not self._fetch(repository, origins[repository]):
                break

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:  # never let the source of truth die with a thread
                log.exception("poll failed")
            self._wake.wait(timeout=self._seconds_to_next_due())
            self._wake.clear()

    def _seconds_to_next_due(self) -> float:
        now = self._clock()
        with self._lock:
            next_due = min(self._due.values(), default=now + self._interval)
        return max(0.05, min(self._interval, max(next_due, self._paused_until) - now))

    def _fetch(self, repository: Repository, origins: Sequence[str]) -> bool:
        """One conditional fetch; False when the rate limit says to stop fetching anything."""
        with self._lock:
            self._due[repository] = self._clock() + self._interval
            previous = self._states.get(repository)
        try:
            listing = self._source.open_pull_requests(repository)
        except RateLimited as exc:
            wait = exc.retry_after or self._interval
            self._paused_until = self._clock() + wait
            log.warning("github rate limited", repository=repository.full_name, retry_in_seconds=round(wait, 1))
            self._report(repository, None, exc)
            return False
        except GitHubError as exc:
            log.warning("github fetch failed", repository=repository.full_name, error=str(exc), status=exc.status)
            self._report(repository, None, exc)
            state = RepositoryState(
                pull_requests=previous.pull_requests if previous and not exc.permanent else None, error=exc
            )
            self._store(repository, state, origins, changed=previous is None or previous.error is None)
            return True
        self._report(repository, listing, None)
        changed = listing.changed or previous is None or previous.error is not None
        self._store(repository, RepositoryState(listing.pull_requests), origins, changed=changed)
        return True

    def _store(self, repository: Repository, state: RepositoryState, origins: Sequence[str], *, changed: bool) -> None:
        with self._lock:
            self._states[repository] = state
        if changed:
            for key in origins:
                self._enqueue(key)

    def _report(self, repository: Repository, listing: Listing | None, error: GitHubError | None) -> None:
        if self._on_fetch is not None:
            self._on_fetch(repository, listing, error)
