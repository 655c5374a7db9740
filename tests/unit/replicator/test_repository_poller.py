"""The poller fetches each repository once per interval, shares it, and reports changes only."""

from __future__ import annotations

from dataclasses import dataclass, field

from replicator.github_source import GitHubError, Listing, RateLimited
from replicator.pull_request import PullRequest
from replicator.repository import Repository
from replicator.repository_poller import RepositoryPoller

MONO = Repository(host="github.com", owner="org", name="mono")
OTHER = Repository(host="github.com", owner="org", name="other")


@dataclass
class FakeLister:
    answers: dict[Repository, list[object]] = field(default_factory=dict)
    calls: list[Repository] = field(default_factory=list)

    def open_pull_requests(self, repository: Repository) -> Listing:
        self.calls.append(repository)
        answer = self.answers[repository].pop(0) if len(self.answers[repository]) > 1 else self.answers[repository][0]
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, Listing)
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pr(number: int) -> PullRequest:
    return PullRequest(number=number, head_sha="a" * 40, head_ref=f"b{number}", base_ref="main")


def _poller(
    lister: FakeLister, origins: dict[Repository, list[str]], clock: Clock, enqueued: list[str]
) -> RepositoryPoller:
    return RepositoryPoller(
        source=lister,
        interval=60,
        origins_by_repository=lambda: origins,
        enqueue=enqueued.append,
        clock=clock,
    )


def test_one_fetch_per_repository_however_many_origins_share_it() -> None:
    lister = FakeLister({MONO: [Listing((_pr(1),), changed=True)]})
    enqueued: list[str] = []
    poller = _poller(lister, {MONO: ["ns/api", "ns/web", "other/worker"]}, Clock(), enqueued)
    poller.poll_once()
    assert lister.calls == [MONO]
    assert sorted(enqueued) == ["ns/api", "ns/web", "other/worker"]
    state = poller.state(MONO)
    assert state is not None and state.pull_requests == (_pr(1),)


def test_unchanged_list_enqueues_nothing_and_waits_for_the_interval() -> None:
    lister = FakeLister({MONO: [Listing((_pr(1),), changed=True), Listing((_pr(1),), changed=False)]})
    clock, enqueued = Clock(), []
    poller = _poller(lister, {MONO: ["ns/api"]}, clock, enqueued)
    poller.poll_once()
    poller.poll_once()  # not due yet: no request at all
    assert len(lister.calls) == 1
    clock.now += 61
    enqueued.clear()
    poller.poll_once()
    assert len(lister.calls) == 2
    assert enqueued == []


def test_refresh_request_fetches_before_the_interval() -> None:
    lister = FakeLister({MONO: [Listing((), changed=True)]})
    poller = _poller(lister, {MONO: ["ns/api"]}, Clock(), [])
    poller.poll_once()
    poller.request_refresh(MONO)
    poller.poll_once()
    assert len(lister.calls) == 2


def test_permanent_error_is_reported_to_origins_without_a_list() -> None:
    lister = FakeLister({MONO: [GitHubError("Not Found", status=404)]})
    enqueued: list[str] = []
    poller = _poller(lister, {MONO: ["ns/api"]}, Clock(), enqueued)
    poller.poll_once()
    state = poller.state(MONO)
    assert state is not None and state.pull_requests is None and state.error is not None
    assert enqueued == ["ns/api"]


def test_transient_error_keeps_the_last_known_list() -> None:
    lister = FakeLister({MONO: [Listing((_pr(3),), changed=True), GitHubError("Bad Gateway", status=502)]})
    clock = Clock()
    poller = _poller(lister, {MONO: ["ns/api"]}, clock, [])
    poller.poll_once()
    clock.now += 61
    poller.poll_once()
    state = poller.state(MONO)
    assert state is not None and state.pull_requests == (_pr(3),) and state.error is not None


def test_rate_limit_pauses_every_repository_until_reset() -> None:
    lister = FakeLister(
        {
            MONO: [RateLimited("exhausted", status=403, retry_after=300), Listing((), changed=True)],
            OTHER: [Listing((), changed=True)],
        }
    )
    clock = Clock()
    poller = _poller(lister, {MONO: ["a/x"], OTHER: ["b/y"]}, clock, [])
    poller.poll_once()
    assert lister.calls == [MONO]  # stopped after the rate limit, OTHER not tried
    clock.now += 120
    poller.poll_once()
    assert lister.calls == [MONO]  # still paused
    clock.now += 200
    poller.poll_once()
    assert lister.calls[1:] == [MONO, OTHER]


def test_repository_no_longer_named_is_forgotten() -> None:
    lister = FakeLister({MONO: [Listing((), changed=True)]})
    origins = {MONO: ["ns/api"]}
    poller = _poller(lister, origins, Clock(), [])
    poller.poll_once()
    origins.clear()
    poller.poll_once()
    assert poller.state(MONO) is None
