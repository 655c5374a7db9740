"""Poll each opted-in repository's open pull requests: the replicator's source of truth.

One list per repository per interval, however many origins name it (a monorepo serves many
Deployments), with conditional requests so an unchanged list is a free 304. When a repository's
list changes, or a fetch fails, every origin naming it is enqueued; reconciles then read the last
known answer from here and never call GitHub themselves. A webhook or a reconcile that finds no
list yet asks for an immediate refresh. An exhausted rate limit pauses all polling until GitHub's
reset time instead of spinning; a repository whose fetch keeps failing (unknown, no access, 5xx)
is asked exponentially less often, and at once again when a webhook or a new origin asks.

What the origins of a repository need beyond the list is fetched here too, once per head:
the head commit's date (only when an origin uses idle expiry; a commit never changes, so once
per sha) and the image gate of each head (only when an origin names a gate; conditional
requests each interval until the gate succeeded, which is final).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol, cast

import structlog

from replicator.github_source import GitHubError, Listing, RateLimited
from replicator.pull_request import PullRequest
from replicator.repository import Repository

log = structlog.get_logger(__name__)

CONFIRM_DELAY = 2.0
"""Seconds after a webhook-applied pull request until a list fetch confirms it (one per burst)."""

MAX_BACKOFF_INTERVALS = 16
"""A repository that keeps failing is polled at most every 16 intervals (16 minutes by default)."""


@dataclass(frozen=True)
class Requirements:
    """What the origins naming one repository need besides its pull-request list."""

    commit_dates: bool = False
    gates: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RepositoryState:
    """The last answer for one repository: its open pull requests, or the error that replaced them."""

    pull_requests: tuple[PullRequest, ...] | None
    error: GitHubError | None = None
    commit_dates: Mapping[str, datetime | None] = field(default_factory=dict)
    """Head sha -> committer date, for the heads whose date was fetched."""
    gates: Mapping[tuple[str, str], bool | None] = field(default_factory=dict)
    """(gate name, head sha) -> True succeeded / False failed / None pending, for the pairs asked."""


class PullRequestLister(Protocol):
    """What the poller needs from GitHub (``GitHubSource`` in production)."""

    def open_pull_requests(self, repository: Repository) -> Listing: ...


class DetailSource(Protocol):
    def commit_date(self, repository: Repository, sha: str) -> datetime | None: ...

    def gate_state(self, repository: Repository, sha: str, name: str) -> bool | None: ...

    def forget_commits(self, repository: Repository, keep: set[str]) -> None: ...


class RepositoryPoller:
    def __init__(
        self,
        *,
        source: PullRequestLister,
        interval: float,
        origins_by_repository: Callable[[], Mapping[Repository, Sequence[str]]],
        enqueue: Callable[[str], None],
        requirements: Callable[[], Mapping[Repository, Requirements]] | None = None,
        on_fetch: Callable[[Repository, Listing | None, GitHubError | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._interval = interval
        self._origins_by_repository = origins_by_repository
        self._requirements = requirements
        self._enqueue = enqueue
        self._on_fetch = on_fetch
        self._clock = clock
        self._states: dict[Repository, RepositoryState] = {}
        self._due: dict[Repository, float] = {}
        self._paused_until = 0.0
        self._failures: dict[Repository, int] = {}
        self._requested: dict[Repository, None] = {}
        """Refreshes asked for (in order), served ahead of the rest of a round."""
        self._lock = threading.Lock()
        self._wake = threading.Event()

    @property
    def interval(self) -> float:
        return self._interval

    def state(self, repository: Repository) -> RepositoryState | None:
        with self._lock:
            return self._states.get(repository)

    def apply_pull_request(self, repository: Repository, pull_request: PullRequest) -> None:
        """A pull request as a verified webhook delivery shows it: applied to the last list now.

        GitHub signed it, so it is authentic as of its event, and acting on it costs no request
        (a burst of PRs would otherwise cost a list fetch each, and GitHub allows 900 reads a
        minute). An older state than the one known (deliveries can arrive out of order) is not
        applied. Either way a list fetch confirms it :data:`CONFIRM_DELAY` later, one for every
        delivery of the repository in between. Without a list yet, the repository is fetched now.
        """
        with self._lock:
            state = self._states.get(repository)
        if state is None or state.pull_requests is None:
            self.request_refresh(repository)
            return
        known = {pr.number: pr for pr in state.pull_requests}
        current = known.get(pull_request.number)
        stale = (
            current is not None
            and current.updated_at is not None
            and pull_request.updated_at is not None
            and pull_request.updated_at < current.updated_at
        )
        if not stale:
            if pull_request.is_open:
                known[pull_request.number] = pull_request
            else:
                known.pop(pull_request.number, None)
        with self._lock:
            if not stale and self._states.get(repository) is state:
                self._states[repository] = replace(
                    state, pull_requests=tuple(sorted(known.values(), key=lambda pr: pr.number))
                )
            else:
                stale = True  # a fetch landed meanwhile: its list is newer than this delivery
            confirm = self._clock() + CONFIRM_DELAY
            self._due[repository] = min(self._due.get(repository, confirm), confirm)
        if not stale:
            for key in self._origins_by_repository().get(repository, ()):
                self._enqueue(key)
        self._wake.set()

    def request_refresh(self, repository: Repository) -> None:
        """Fetch ``repository`` next, ahead of the round in progress (webhook delivery, new origin)."""
        with self._lock:
            self._due[repository] = 0.0
            self._requested[repository] = None
        self._wake.set()

    def poll_once(self) -> None:
        """Fetch every repository that is due; enqueue the origins of those that changed."""
        origins = self._origins_by_repository()
        requirements = self._requirements() if self._requirements is not None else {}
        now = self._clock()
        with self._lock:
            # Also refresh requests for repositories nobody names (an organisation-wide webhook):
            # left in place they would be "due" forever and wake the loop without end.
            for gone in (set(self._states) | set(self._due)) - set(origins):
                self._states.pop(gone, None)
                self._due.pop(gone, None)
                self._failures.pop(gone, None)
                self._requested.pop(gone, None)
            due = iter(sorted((r for r in origins if self._due.get(r, 0.0) <= now), key=lambda r: r.full_name))
        if now < self._paused_until:
            return
        fetched: set[Repository] = set()
        while True:
            repository = self._next(due, origins, fetched)
            if repository is None:
                return
            fetched.add(repository)
            if not self._fetch(repository, origins[repository], requirements.get(repository, Requirements())):
                return

    def _next(
        self, due: Iterator[Repository], origins: Mapping[Repository, Sequence[str]], fetched: set[Repository]
    ) -> Repository | None:
        """The next repository of this round: one a webhook asked for since, else the next due.

        A refresh asked for during a long round (a webhook) goes next instead of waiting for the
        round to end; one already fetched in this round waits for the next round (the request woke it).
        """
        with self._lock:
            for asked in list(self._requested):
                if asked in fetched:
                    continue  # stays asked: served first in the next round, which the request woke
                del self._requested[asked]
                if asked in origins:
                    return asked
        return next((r for r in due if r not in fetched), None)

    def run(self, stop: threading.Event) -> None:
        # Stopping must not wait out a long interval: the stop event also wakes the loop.
        def wake_on_stop() -> None:
            stop.wait()
            self._wake.set()

        threading.Thread(target=wake_on_stop, name="poller-stop", daemon=True).start()
        while not stop.is_set():
            self._wake.wait(timeout=self.cycle())
            self._wake.clear()

    def cycle(self) -> float:
        """One poll; the seconds to wait before the next. A cycle that fails waits a whole interval.

        A failure here is a bug (each repository's GitHub errors are handled per repository), but
        the source of truth must survive it without spinning: retrying at once would loop hot on
        whatever the cause is and log a traceback each time.
        """
        try:
            self.poll_once()
        except Exception:  # never let the source of truth die with a thread
            log.exception("poll failed", retry_in_seconds=self._interval)
            return self._interval
        return self._seconds_to_next_due()

    def _seconds_to_next_due(self) -> float:
        now = self._clock()
        with self._lock:
            next_due = min(self._due.values(), default=now + self._interval)
        return max(0.05, min(self._interval, max(next_due, self._paused_until) - now))

    def _fetch(self, repository: Repository, origins: Sequence[str], needs: Requirements) -> bool:
        """One conditional fetch; False when the rate limit says to stop fetching anything."""
        with self._lock:
            self._due[repository] = self._clock() + self._interval
            previous = self._states.get(repository)
        try:
            listing = self._source.open_pull_requests(repository)
            dates, gates = self._details(repository, listing.pull_requests, needs, previous)
        except RateLimited as exc:
            wait = exc.retry_after or self._interval
            self._paused_until = self._clock() + wait
            log.warning(
                "github rate limited: polling paused for every repository",
                repository=repository.full_name,
                limit="secondary" if exc.secondary else "primary",
                retry_in_seconds=round(wait, 1),
                error=str(exc),
            )
            self._report(repository, None, exc)
            return False
        except GitHubError as exc:
            with self._lock:
                failures = self._failures[repository] = self._failures.get(repository, 0) + 1
                # A repository that keeps failing (404, 5xx) is asked less often: 2, 4, ... 16 intervals.
                self._due[repository] = self._clock() + self._interval * min(2**failures, MAX_BACKOFF_INTERVALS)
            log.warning(
                "github fetch failed",
                repository=repository.full_name,
                error=str(exc),
                status=exc.status,
                failures=failures,
            )
            self._report(repository, None, exc)
            keep = previous is not None and not exc.permanent
            state = RepositoryState(
                pull_requests=previous.pull_requests if previous and keep else None,
                error=exc,
                commit_dates=previous.commit_dates if previous and keep else {},
                gates=previous.gates if previous and keep else {},
            )
            self._store(repository, state, origins, changed=previous is None or previous.error is None)
            return True
        with self._lock:
            self._failures.pop(repository, None)
        self._report(repository, listing, None)
        changed = (
            listing.changed
            or previous is None
            or previous.error is not None
            or dict(previous.commit_dates) != dates
            or dict(previous.gates) != gates
        )
        state = RepositoryState(listing.pull_requests, commit_dates=dates, gates=gates)
        self._store(repository, state, origins, changed=changed)
        return True

    def _details(
        self,
        repository: Repository,
        prs: Sequence[PullRequest],
        needs: Requirements,
        previous: RepositoryState | None,
    ) -> tuple[dict[str, datetime | None], dict[tuple[str, str], bool | None]]:
        """Commit dates and gate states of the current heads; final answers are never asked again."""
        if not (needs.commit_dates or needs.gates) or not _has_details(self._source):
            return {}, {}
        source = cast(DetailSource, self._source)
        heads = {pr.head_sha for pr in prs if pr.head_sha}
        old_dates = previous.commit_dates if previous else {}
        old_gates = previous.gates if previous else {}
        dates: dict[str, datetime | None] = {}
        gates: dict[tuple[str, str], bool | None] = {}
        for sha in sorted(heads):
            if needs.commit_dates:
                if sha in old_dates:
                    dates[sha] = old_dates[sha]
                else:
                    with _unknown_on_error(repository, sha) as ok:
                        dates[sha] = source.commit_date(repository, sha)
                    if not ok:
                        dates.pop(sha, None)  # asked again next time
            for name in sorted(needs.gates):
                gates[(name, sha)] = None
                if old_gates.get((name, sha)) is True:
                    gates[(name, sha)] = True  # a successful build stays built
                    continue
                with _unknown_on_error(repository, sha):
                    gates[(name, sha)] = source.gate_state(repository, sha, name)
        source.forget_commits(repository, heads)
        return dates, gates

    def _store(self, repository: Repository, state: RepositoryState, origins: Sequence[str], *, changed: bool) -> None:
        with self._lock:
            self._states[repository] = state
        if changed:
            for key in origins:
                self._enqueue(key)

    def _report(self, repository: Repository, listing: Listing | None, error: GitHubError | None) -> None:
        if self._on_fetch is not None:
            self._on_fetch(repository, listing, error)


class _Outcome:
    def __init__(self) -> None:
        self.ok = True

    def __bool__(self) -> bool:
        return self.ok


@contextlib.contextmanager
def _unknown_on_error(repository: Repository, sha: str) -> Iterator[_Outcome]:
    """A detail that cannot be read is unknown, not fatal; only the rate limit stops the poll."""
    outcome = _Outcome()
    try:
        yield outcome
    except RateLimited:
        raise
    except GitHubError as exc:
        outcome.ok = False
        log.warning("github detail fetch failed", repository=repository.full_name, sha=sha, error=str(exc))


def _has_details(source: object) -> bool:
    return all(hasattr(source, name) for name in ("commit_date", "gate_state", "forget_commits"))
