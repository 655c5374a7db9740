"""When the next GitHub read may leave: paced by GitHub's own limits, not a fixed sleep.

A fixed gap between reads (PyGithub's ``seconds_between_requests``, 0.25 s by default) made the
poller's round of 100 repositories take 25 s and a webhook-triggered refresh wait behind it.
GitHub documents two limits for REST reads, and this follows both:

- the **secondary limit**: at most 900 points per minute per endpoint, a GET costing 1 point
  (docs.github.com, "Rate limits for the REST API", secondary rate limits). A token bucket lets a
  burst of reads go at once and refills at 600 a minute, well inside that;
- the **primary budget** in ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` (5,000 an hour for a
  token, more for an App). Authorised conditional requests answered 304 cost nothing, so while the
  budget is healthy no read waits for it; once less than a tenth of it is left, the rest is spread
  evenly until the reset, so the poller slows down instead of hitting the wall (an exhausted budget
  still pauses all polling, as the 403 says).

``min_interval`` (``--github-read-interval``) adds a fixed floor for those who want one. Writes
keep PyGithub's own spacing (``--github-write-interval``: GitHub asks for a second between
content-creating requests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

READS_PER_MINUTE = 600.0
"""Sustained reads: two thirds of the 900 points a minute GitHub's secondary limit allows."""
BURST = 60.0
"""Reads that may leave back to back after a quiet spell (a poll round, a webhook burst)."""
LOW_BUDGET_FRACTION = 0.1
"""Below this share of the hourly budget, spread what is left until the reset."""
MAX_SLEEP = 5.0
"""Longest a read sleeps for its slot; a longer wait pauses polling instead (it can be interrupted)."""


@dataclass
class ReadPacer:
    """Reserve a slot for one read; thread-safe. ``reserve`` returns the seconds to wait first."""

    reads_per_minute: float = READS_PER_MINUTE
    burst: float = BURST
    min_interval: float = 0.0
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    _tokens: float = field(default=BURST, init=False)
    _updated: float | None = field(default=None, init=False)
    _next_free: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def reserve(self, *, limit: int | None, remaining: int | None, reset_epoch: int | None) -> float:
        """Seconds to wait before the next read may go, given the last rate-limit headers seen."""
        with self._lock:
            now = self.clock()
            if self._updated is None:
                self._updated, self._tokens = now, self.burst
            rate = self.reads_per_minute / 60.0
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * rate)
            self._updated = now
            start = max(now, self._next_free)
            if self._tokens < 1.0:
                start = max(start, now + (1.0 - self._tokens) / rate)
            spacing = max(self.min_interval, _budget_spacing(limit, remaining, reset_epoch, self.wall_clock()))
            self._tokens -= 1.0
            self._next_free = start + spacing
            return start - now

    def wait(self, *, limit: int | None, remaining: int | None, reset_epoch: int | None) -> float:
        """Sleep until the slot when it is near (at most ``MAX_SLEEP``); else return the wait, unslept.

        A longer wait (a budget nearly spent) is the caller's to turn into a pause it can interrupt.
        """
        delay = self.reserve(limit=limit, remaining=remaining, reset_epoch=reset_epoch)
        if delay > MAX_SLEEP:
            return delay
        if delay > 0:
            time.sleep(delay)
        return 0.0


def _budget_spacing(limit: int | None, remaining: int | None, reset_epoch: int | None, now: float) -> float:
    """Seconds between reads that make a low budget last until its reset; 0 while it is healthy."""
    if limit is None or remaining is None or reset_epoch is None or limit <= 0:
        return 0.0
    if remaining >= limit * LOW_BUDGET_FRACTION:
        return 0.0
    until_reset = max(0.0, reset_epoch - now)
    return until_reset / max(1, remaining)
