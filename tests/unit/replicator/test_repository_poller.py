"""The poller fetches each repository once per interval, shares it, and reports changes only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from replicator.github_source import GitHubError, Listing, RateLimited
from replicator.pull_request import PullRequest
from replicator.repository import Repository
from replicator.repository_poller import RepositoryPoller, Requirements

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


@dataclass
class FakeDetails(FakeLister):
    """A lister that also answers commit dates and gate states, counting each question."""

    dates: dict[str, object] = field(default_factory=dict)
    gate: dict[tuple[str, str], object] = field(default_factory=dict)
    date_calls: list[str] = field(default_factory=list)
    gate_calls: list[tuple[str, str]] = field(default_factory=list)

    def commit_date(self, repository: Repository, sha: str) -> object:
        self.date_calls.append(sha)
        return self.dates.get(sha)

    def gate_state(self, repository: Repository, sha: str, name: str) -> object:
        self.gate_calls.append((name, sha))
        answer = self.gate.get((name, sha))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def forget_commits(self, repository: Repository, keep: set[str]) -> None:
        return None


def _details_poller(source: FakeDetails, clock: Clock, enqueued: list[str], needs: Requirements) -> RepositoryPoller:
    return RepositoryPoller(
        source=source,
        interval=60,
        origins_by_repository=lambda: {MONO: ["ns/api"]},
        requirements=lambda: {MONO: needs},
        enqueue=enqueued.append,
        clock=clock,
    )


def test_commit_dates_are_fetched_once_per_head_and_only_when_idle_expiry_needs_them() -> None:
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    source = FakeDetails({MONO: [Listing((_pr(1),), changed=True), Listing((_pr(1),), changed=False)]})
    source.dates["a" * 40] = stamp
    clock, enqueued = Clock(), []
    poller = _details_poller(source, clock, enqueued, Requirements(commit_dates=True))
    poller.poll_once()
    clock.now += 61
    poller.poll_once()
    assert source.date_calls == ["a" * 40]
    state = poller.state(MONO)
    assert state is not None and state.commit_dates == {"a" * 40: stamp}

    plain = FakeDetails({MONO: [Listing((_pr(1),), changed=True)]})
    _details_poller(plain, Clock(), [], Requirements()).poll_once()
    assert plain.date_calls == [] and plain.gate_calls == []


def test_pending_gate_is_asked_every_interval_and_its_success_enqueues_the_origins() -> None:
    source = FakeDetails({MONO: [Listing((_pr(1),), changed=True), Listing((_pr(1),), changed=False)]})
    clock, enqueued = Clock(), []
    poller = _details_poller(source, clock, enqueued, Requirements(gates=frozenset({"image"})))
    poller.poll_once()
    assert enqueued == ["ns/api"]
    enqueued.clear()
    clock.now += 61
    poller.poll_once()  # still pending: nothing changed, nothing enqueued
    assert enqueued == [] and len(source.gate_calls) == 2
    source.gate[("image", "a" * 40)] = True
    clock.now += 61
    poller.poll_once()
    assert enqueued == ["ns/api"]
    clock.now += 61
    poller.poll_once()  # success is final: not asked again
    assert len(source.gate_calls) == 3
    state = poller.state(MONO)
    assert state is not None and state.gates == {("image", "a" * 40): True}


def test_a_failing_gate_read_is_unknown_and_a_rate_limit_pauses() -> None:
    source = FakeDetails({MONO: [Listing((_pr(1),), changed=True)]})
    source.gate[("image", "a" * 40)] = GitHubError("boom", status=502)
    poller = _details_poller(source, Clock(), [], Requirements(gates=frozenset({"image"})))
    poller.poll_once()
    state = poller.state(MONO)
    assert state is not None and state.pull_requests == (_pr(1),) and state.gates == {("image", "a" * 40): None}

    limited = FakeDetails({MONO: [Listing((_pr(1),), changed=True)]})
    limited.gate[("image", "a" * 40)] = RateLimited("exhausted", status=403, retry_after=100)
    clock = Clock()
    poller = _details_poller(limited, clock, [], Requirements(gates=frozenset({"image"})))
    poller.poll_once()
    clock.now += 61
    poller.poll_once()
    assert len(limited.calls) == 1  # paused until the reset


def test_a_failing_repository_is_asked_exponentially_less_often_until_it_answers() -> None:
    lister = FakeLister({MONO: [GitHubError("Not Found", status=404)]})
    clock = Clock()
    poller = _poller(lister, {MONO: ["ns/api"]}, clock, [])
    poller.poll_once()
    clock.now += 61
    poller.poll_once()  # due after 2 intervals, not 1
    assert len(lister.calls) == 1
    clock.now += 60
    poller.poll_once()
    assert len(lister.calls) == 2
    clock.now += 121
    poller.poll_once()  # now 4 intervals
    assert len(lister.calls) == 2
    lister.answers[MONO] = [Listing((), changed=True)]
    poller.request_refresh(MONO)  # a webhook or a fixed annotation asks at once
    poller.poll_once()
    assert len(lister.calls) == 3
    clock.now += 61
    poller.poll_once()
    assert len(lister.calls) == 4, "success resets the backoff"


def test_refresh_for_a_repository_nobody_names_is_dropped_not_due_forever() -> None:
    lister = FakeLister({MONO: [Listing((), changed=True)]})
    clock = Clock()
    poller = _poller(lister, {MONO: ["ns/api"]}, clock, [])
    poller.poll_once()
    poller.request_refresh(OTHER)  # a webhook from an organisation-wide hook
    poller.poll_once()
    assert lister.calls == [MONO]
    assert poller._seconds_to_next_due() == 60  # sleeps a full interval, no busy wake-ups


def test_run_returns_at_once_when_stopped_however_long_the_interval() -> None:
    import threading
    import time

    lister = FakeLister({MONO: [Listing((), changed=True)]})
    poller = RepositoryPoller(
        source=lister, interval=3600, origins_by_repository=lambda: {MONO: ["ns/api"]}, enqueue=lambda _k: None
    )
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 5
    while not lister.calls and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    assert lister.calls, "the first poll happened"
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_cycle_that_fails_waits_a_whole_interval_instead_of_spinning() -> None:
    calls: list[int] = []

    def broken() -> dict[Repository, list[str]]:
        calls.append(1)
        raise RecursionError("maximum recursion depth exceeded")

    poller = RepositoryPoller(source=FakeLister({}), interval=45, origins_by_repository=broken, enqueue=lambda _k: None)
    poller.request_refresh(MONO)  # something is due now: a healthy cycle would come back at once
    assert poller.cycle() == 45 and calls == [1]


def test_a_refresh_asked_for_during_a_round_goes_next_not_after_the_round() -> None:
    repositories = [Repository(host="github.com", owner="org", name=f"r{i:02d}") for i in range(20)]
    urgent = Repository(host="github.com", owner="org", name="zz-webhook")
    lister = FakeLister({r: [Listing((), changed=True)] for r in [*repositories, urgent]})
    poller = RepositoryPoller(
        source=lister,
        interval=60,
        origins_by_repository=lambda: {r: [f"ns/{r.name}"] for r in [*repositories, urgent]},
        enqueue=lambda _k: None,
    )

    def open_pull_requests(repository: Repository) -> Listing:
        if repository == repositories[2]:
            poller.request_refresh(urgent)  # a webhook arrives while the round is in progress
        return FakeLister.open_pull_requests(lister, repository)

    lister.open_pull_requests = open_pull_requests  # type: ignore[method-assign]
    poller.poll_once()
    order = lister.calls
    assert order[:4] == [*repositories[:3], urgent], order[:5]
    assert len(order) == 21 and order.count(urgent) == 1  # fetched once, not again at its turn
    lister.calls.clear()
    poller.request_refresh(repositories[5])
    poller.request_refresh(Repository(host="github.com", owner="org", name="nobody-names-it"))
    poller.poll_once()
    assert lister.calls == [repositories[5]]


def _at(number: int, *, sha: str, minute: int, state: str = "open") -> PullRequest:
    return PullRequest(
        number=number,
        head_sha=sha * 40,
        head_ref=f"b{number}",
        base_ref="main",
        state=state,
        updated_at=datetime(2026, 12, 8, 12, minute, tzinfo=UTC),
    )


def test_a_delivered_pull_request_is_applied_at_once_and_a_burst_is_confirmed_by_one_list() -> None:
    clock, enqueued = Clock(), []
    lister = FakeLister({MONO: [Listing((_at(1, sha="a", minute=0),), changed=True)]})
    poller = _poller(lister, {MONO: ["ns/api", "ns/web"]}, clock, enqueued)
    poller.poll_once()
    enqueued.clear()

    for n in range(2, 12):  # a burst: ten PRs opened, ten signed deliveries
        poller.apply_pull_request(MONO, _at(n, sha="b", minute=1))
    state = poller.state(MONO)
    assert state is not None and [pr.number for pr in state.pull_requests or ()] == list(range(1, 12))
    assert enqueued == ["ns/api", "ns/web"] * 10 and len(lister.calls) == 1, "no GitHub request yet"

    poller.poll_once()
    assert len(lister.calls) == 1, "the confirming list waits for the burst to end"
    clock.now += 2.0
    poller.poll_once()
    assert len(lister.calls) == 2, "then one list fetch confirms all ten"


def test_an_older_delivery_never_undoes_a_newer_state_and_a_close_removes_the_pr() -> None:
    clock, enqueued = Clock(), []
    lister = FakeLister({MONO: [Listing((_at(1, sha="a", minute=5),), changed=True)]})
    poller = _poller(lister, {MONO: ["ns/api"]}, clock, enqueued)
    poller.poll_once()
    poller.apply_pull_request(MONO, _at(1, sha="0", minute=4))  # delivered late: older than the list
    state = poller.state(MONO)
    assert state is not None and [pr.head_sha[0] for pr in state.pull_requests or ()] == ["a"]
    poller.apply_pull_request(MONO, _at(1, sha="c", minute=6))
    poller.apply_pull_request(MONO, _at(1, sha="c", minute=7, state="closed"))
    state = poller.state(MONO)
    assert state is not None and state.pull_requests == ()


def test_a_delivery_before_any_list_fetches_the_list_now() -> None:
    clock, enqueued = Clock(), []
    lister = FakeLister({MONO: [Listing((_at(1, sha="a", minute=0),), changed=True)]})
    poller = _poller(lister, {MONO: ["ns/api"]}, clock, enqueued)
    poller.apply_pull_request(MONO, _at(1, sha="a", minute=0))
    assert poller.state(MONO) is None
    poller.poll_once()
    assert len(lister.calls) == 1 and enqueued == ["ns/api"]
