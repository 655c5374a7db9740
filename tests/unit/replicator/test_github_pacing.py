"""Reads follow GitHub's limits: a burst goes at once, the sustained rate stays inside the secondary
limit, and a nearly spent budget is spread until its reset."""

from __future__ import annotations

from replicator.github_pacing import ReadPacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pacer(clock: Clock, **kwargs: float) -> ReadPacer:
    return ReadPacer(clock=clock, wall_clock=clock, **kwargs)


HEALTHY = {"limit": 5000, "remaining": 4990, "reset_epoch": 4600}


def test_a_burst_goes_at_once_then_the_sustained_rate_holds() -> None:
    clock = Clock()
    reads = pacer(clock, reads_per_minute=600, burst=60)
    waits = [reads.reserve(**HEALTHY) for _ in range(60)]
    assert waits == [0.0] * 60  # a poll round of 60 repositories leaves at once
    # The 61st and later wait for the bucket: 10 a second (600 a minute), never faster.
    later = [reads.reserve(**HEALTHY) for _ in range(10)]
    assert later == sorted(later) and abs(later[0] - 0.1) < 1e-9 and abs(later[-1] - 1.0) < 1e-9
    clock.now += 60  # a quiet minute refills the burst
    assert reads.reserve(**HEALTHY) == 0.0


def test_within_any_minute_reads_stay_under_githubs_900_points() -> None:
    clock = Clock()
    reads = pacer(clock)
    sent = []
    for _ in range(2000):
        clock.now += reads.reserve(**HEALTHY)
        sent.append(clock.now)
    start = 0
    for end, moment in enumerate(sent):
        while moment - sent[start] >= 60:
            start += 1
        assert end - start + 1 <= 900


def test_a_nearly_spent_budget_is_spread_until_the_reset() -> None:
    clock = Clock()
    reads = pacer(clock)
    low = {"limit": 5000, "remaining": 100, "reset_epoch": int(clock.now) + 300}
    assert reads.reserve(**low) == 0.0
    assert reads.reserve(**low) == 3.0  # 300 s until the reset / 100 left
    assert reads.reserve(**HEALTHY) == 6.0  # the spread slot handed out before still holds
    clock.now += 100
    assert reads.reserve(**HEALTHY) == 0.0  # a healthy budget adds no spacing


def test_a_floor_from_the_flag_applies_on_top() -> None:
    clock = Clock()
    reads = pacer(clock, min_interval=0.5)
    assert [reads.reserve(**HEALTHY) for _ in range(3)] == [0.0, 0.5, 1.0]


def test_unknown_headers_mean_no_budget_spacing() -> None:
    clock = Clock()
    reads = pacer(clock)
    assert [reads.reserve(limit=None, remaining=None, reset_epoch=None) for _ in range(5)] == [0.0] * 5
