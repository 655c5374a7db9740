"""RevertTracker: repair a one-off hand edit, stop fighting a writer that keeps undoing us."""

from __future__ import annotations

import pytest

from service_router.reverts import RevertTracker
from service_router.settings import parse_settings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def tracker(clock: Clock, **kwargs: float) -> RevertTracker:
    return RevertTracker(
        threshold=int(kwargs.get("threshold", 3)),
        window=kwargs.get("window", 600),
        backoff=kwargs.get("backoff", 300),
        max_backoff=kwargs.get("max_backoff", 1000),
        clock=clock,
    )


def test_only_the_same_routes_to_the_same_target_are_a_repeat() -> None:
    t = tracker(Clock())
    assert not t.is_repeat("ns/echo", "ns/vs", [1])
    t.remember("ns/echo", "ns/vs", [1])
    assert t.is_repeat("ns/echo", "ns/vs", [1])
    assert not t.is_repeat("ns/echo", "ns/vs", [2])
    assert not t.is_repeat("ns/echo", "ns/other", [1])
    assert not t.is_repeat("ns/api", "ns/vs", [1])
    t.remember("ns/echo", "ns/vs", None)  # deleted: nothing of ours stands there
    assert not t.is_repeat("ns/echo", "ns/vs", [1])


@pytest.mark.parametrize(
    ("gaps", "writes"),
    [
        ([0], [True]),
        ([0, 10], [True, True]),
        ([0, 10, 10], [True, True, False]),
        ([0, 700, 700, 700], [True, True, True, True]),  # reverts spread wider than the window
        ([0, 10, 700], [True, True, True]),  # the first left the window
    ],
    ids=["hand-edit", "twice", "third-in-window-backs-off", "spread-out", "window-slides"],
)
def test_threshold_within_the_window(gaps: list[float], writes: list[bool]) -> None:
    clock = Clock()
    t = tracker(clock)
    verdicts = []
    for gap in gaps:
        clock.now += gap
        verdicts.append(t.revert_seen("k").write)
    assert verdicts == writes


def test_back_off_then_one_retry_then_doubling_up_to_the_cap_and_forgiveness() -> None:
    clock = Clock()
    t = tracker(clock)
    for _ in range(2):
        assert t.revert_seen("k").write
    first = t.revert_seen("k")
    assert (first.write, first.started_backoff, first.backoff_seconds) == (False, True, 300)
    clock.now += 100
    assert t.backoff_remaining("k") == 200
    during = t.revert_seen("k")
    assert (during.write, during.new_revert, during.started_backoff) == (False, False, False)

    clock.now += 200
    retry = t.revert_seen("k")
    assert (retry.write, retry.new_revert) == (True, False)
    second = t.revert_seen("k")  # undone again right after the retry
    assert (second.started_backoff, second.backoff_seconds) == (True, 600)
    clock.now += 600
    assert t.revert_seen("k").write  # the retry
    third = t.revert_seen("k")
    assert third.backoff_seconds == 1000  # capped

    clock.now += 1000
    assert t.revert_seen("k").write  # the retry
    clock.now += 601  # a quiet window after the back-off: forgiven, the count starts again
    assert t.revert_seen("k").write
    assert t.revert_seen("k").write
    assert t.revert_seen("k").backoff_seconds == 300


def test_keys_are_independent_and_forgettable() -> None:
    clock = Clock()
    t = tracker(clock, threshold=1)
    assert t.revert_seen("a").started_backoff
    assert t.backoff_remaining("b") == 0
    t.forget("a")
    assert t.backoff_remaining("a") == 0


def test_revert_flags_are_validated() -> None:
    settings = parse_settings(["--revert-threshold", "5", "--revert-window", "60", "--revert-backoff", "30"], {})
    assert (settings.reverts.threshold, settings.reverts.window_seconds, settings.reverts.backoff_seconds) == (
        5,
        60,
        30,
    )
    with pytest.raises(SystemExit):
        parse_settings(["--revert-threshold", "0"], {})
    with pytest.raises(SystemExit):
        parse_settings(["--revert-backoff", "0"], {})
