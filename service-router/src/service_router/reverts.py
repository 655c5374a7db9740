"""Notice when another writer keeps undoing our routes, and stop fighting it for a while.

A GitOps tool (Argo CD self-heal, Flux) that owns the origin's VirtualService restores its
manifest every time we add a route; we see the change, restore our routes, and the two writers
would fight in a hot loop, each write waking the other. The reconciler tells this tracker about
every write it is about to repeat: the same routes it wrote last time for the same
VirtualService, which can only be needed because someone removed them.

Guarantees:
- one undone write (a hand edit) is simply repaired: the tracker says "write";
- ``threshold`` undone writes within ``window`` seconds start a back-off of ``backoff`` seconds
  during which the same write is refused; after it, one retry; if that is undone too within
  ``window``, the next back-off starts at once, twice as long (capped at ``max_backoff``), so a
  persistent fight costs one write per back-off, not a hot loop;
- a write of *different* routes (a clone came or went) is never refused: it is new intent, not
  a fight, and a Service being deleted must lose its route;
- the clock is injected, and all state is per key, under a lock (workers are threads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_THRESHOLD = 3
DEFAULT_WINDOW_SECONDS = 600.0
DEFAULT_BACKOFF_SECONDS = 300.0
MAX_BACKOFF_SECONDS = 3600.0


@dataclass
class _State:
    written: dict[str, Any] = field(default_factory=dict)
    """Per written VirtualService: the route list we last wrote there."""
    reverts: list[float] = field(default_factory=list)
    blocked_until: float = 0.0
    strikes: int = 0
    retry_due: bool = False
    """A back-off ended: the next write is the retry of the revert that started it, not a new one."""


@dataclass(frozen=True)
class Verdict:
    """What to do about a write that repeats our last one."""

    write: bool
    new_revert: bool = True
    """False for the one retry after a back-off (the same revert, seen again)."""
    started_backoff: bool = False
    backoff_seconds: float = 0.0


class RevertTracker:
    def __init__(
        self,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        window: float = DEFAULT_WINDOW_SECONDS,
        backoff: float = DEFAULT_BACKOFF_SECONDS,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold = threshold
        self.window = window
        self.backoff = backoff
        self.max_backoff = max(max_backoff, backoff)
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def is_repeat(self, key: str, target: str, routes: Any) -> bool:
        """Whether writing ``routes`` to ``target`` repeats the last write we made there for ``key``."""
        with self._lock:
            state = self._states.get(key)
            return state is not None and target in state.written and state.written[target] == routes

    def remember(self, key: str, target: str, routes: Any) -> None:
        """A write of ``routes`` to ``target`` succeeded."""
        with self._lock:
            self._states.setdefault(key, _State()).written[target] = routes

    def backoff_remaining(self, key: str) -> float:
        with self._lock:
            state = self._states.get(key)
            return max(0.0, state.blocked_until - self._clock()) if state else 0.0

    def revert_seen(self, key: str) -> Verdict:
        """Another writer undid our last write for ``key``: write again, or start backing off."""
        now = self._clock()
        with self._lock:
            state = self._states.setdefault(key, _State())
            if now < state.blocked_until:
                return Verdict(write=False, new_revert=False, backoff_seconds=state.blocked_until - now)
            if state.retry_due:
                state.retry_due = False
                return Verdict(write=True, new_revert=False)
            if state.strikes and now - state.blocked_until > self.window:
                state.strikes = 0  # a quiet window after the last back-off: forgive
            state.reverts = [t for t in state.reverts if now - t <= self.window]
            state.reverts.append(now)
            if state.strikes or len(state.reverts) >= self.threshold:
                seconds = min(self.max_backoff, self.backoff * (2**state.strikes))
                state.strikes += 1
                state.blocked_until = now + seconds
                state.retry_due = True
                state.reverts.clear()
                return Verdict(write=False, started_backoff=True, backoff_seconds=seconds)
            return Verdict(write=True)

    def forget(self, key: str) -> None:
        """Drop all memory of ``key`` (its origin has no clones left)."""
        with self._lock:
            self._states.pop(key, None)
