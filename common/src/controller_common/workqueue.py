"""A rate-limited, de-duplicating work queue of keys with client-go's semantics.

Why this exists: informer events, the GitHub poller and webhooks all say "look at key X again".
The queue turns any burst of such signals into *one* reconcile per key at a time, and is the
only place where whole reconciles are retried (per-key exponential backoff plus an overall
token bucket), so no reconcile function ever sleeps or loops.

Guarantees (as in k8s.io/client-go/util/workqueue):

- A key added while it is waiting is queued once (``dirty`` set).
- A key is never handed to two workers at once; a key added while it is being processed is
  queued again when the worker calls :meth:`WorkQueue.done`.
- :meth:`WorkQueue.add_after` holds a key until its time comes; an earlier deadline for a key
  already waiting wins.
- The default rate limiter is the max of per-item exponential backoff (5 ms doubling to 1000 s)
  and a 10 qps / burst 100 token bucket, like ``DefaultControllerRateLimiter``.
- After :meth:`WorkQueue.shutdown`, adds are ignored and :meth:`WorkQueue.get` returns ``None``.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections import deque
from typing import Protocol

from controller_common import metrics as metrics_mod


class RateLimiter(Protocol):
    def when(self, item: str) -> float:
        """Seconds to wait before ``item`` may be processed again; records one more failure."""
        ...

    def forget(self, item: str) -> None: ...

    def num_requeues(self, item: str) -> int: ...


def exponential_backoff(failures: int, *, initial: float, cap: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures: ``initial`` doubling per failure, capped at ``cap``.

    ``0`` before any failure. For loops that retry a whole pass themselves (an informer's
    list/watch, the replicator's Pod labeller); reconciles are retried by the queue's rate limiter.
    """
    if failures <= 0:
        return 0.0
    return float(min(cap, initial * 2 ** min(failures - 1, 30)))


class ItemExponentialFailureRateLimiter:
    """``base * 2**failures`` seconds per item, capped at ``max_delay``."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def when(self, item: str) -> float:
        with self._lock:
            exp = self._failures.get(item, 0)
            self._failures[item] = exp + 1
        if exp > 64:  # 2**64 * base is far beyond any cap; avoid float overflow
            return self.max_delay
        return min(math.ldexp(self.base_delay, exp), self.max_delay)

    def forget(self, item: str) -> None:
        with self._lock:
            self._failures.pop(item, None)

    def num_requeues(self, item: str) -> int:
        with self._lock:
            return self._failures.get(item, 0)


class BucketRateLimiter:
    """An overall token bucket: ``qps`` sustained, ``burst`` at once, shared by all items.

    Like golang.org/x/time/rate's ``Reserve``: every call takes a token now or a future one,
    and returns how long until that token exists.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100) -> None:
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def when(self, item: str) -> float:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: str) -> None:
        return None

    def num_requeues(self, item: str) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay any of ``limiters`` asks for (each one records the attempt)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self.limiters = limiters

    def when(self, item: str) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: str) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: str) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_rate_limiter() -> MaxOfRateLimiter:
    """client-go's ``DefaultControllerRateLimiter``: 5 ms → 1000 s per item, 10 qps burst 100."""
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0), BucketRateLimiter(10.0, 100))


class WorkQueue:
    """Keys to reconcile; see the module docstring for the guarantees."""

    def __init__(
        self,
        name: str,
        rate_limiter: RateLimiter | None = None,
        *,
        metrics: metrics_mod.Metrics | None = None,
    ) -> None:
        self.name = name
        self.rate_limiter: RateLimiter = rate_limiter if rate_limiter is not None else default_rate_limiter()
        m = metrics if metrics is not None else metrics_mod.current()
        self._depth = m.workqueue_depth.labels(name=name)
        self._adds = m.workqueue_adds_total.labels(name=name)
        self._retries = m.workqueue_retries_total.labels(name=name)

        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._shutting_down = False

        # Delayed adds: a heap of (ready_at, seq, key) served by one lazily started thread.
        self._delay_cond = threading.Condition()
        self._waiting: list[tuple[float, int, str]] = []
        self._waiting_at: dict[str, float] = {}
        self._seq = itertools.count()
        self._delay_thread: threading.Thread | None = None

    # --- the plain queue ------------------------------------------------------------------

    def add(self, key: str) -> None:
        with self._cond:
            if self._shutting_down or key in self._dirty:
                return
            self._dirty.add(key)
            if key in self._processing:
                return  # re-queued by done(); never two workers on one key
            self._queue.append(key)
            self._adds.inc()
            self._depth.set(len(self._queue))
            self._cond.notify()

    def get(self, timeout: float | None = None) -> str | None:
        """The next key to process, or ``None`` on shutdown or after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue and not self._shutting_down:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self._shutting_down:
                return None
            key = self._queue.popleft()
            self._processing.add(key)
            self._dirty.discard(key)
            self._depth.set(len(self._queue))
            return key

    def done(self, key: str) -> None:
        """Mark ``key`` finished; if it was added meanwhile, queue it again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty and not self._shutting_down:
                self._queue.append(key)
                self._adds.inc()
                self._depth.set(len(self._queue))
                self._cond.notify()

    def shutdown(self) -> None:
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()
        with self._delay_cond:
            self._delay_cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def len(self) -> int:
        """Keys waiting to be handed out (not counting delayed or in-flight keys)."""
        with self._cond:
            return len(self._queue)

    def __len__(self) -> int:
        return self.len()

    # --- delays and rate limiting -----------------------------------------------------------

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        ready_at = time.monotonic() + delay
        with self._delay_cond:
            if self.shutting_down:
                return
            previous = self._waiting_at.get(key)
            if previous is not None and previous <= ready_at:
                return  # already due sooner
            self._waiting_at[key] = ready_at
            heapq.heappush(self._waiting, (ready_at, next(self._seq), key))
            if self._delay_thread is None:
                self._delay_thread = threading.Thread(
                    target=self._run_delays, name=f"workqueue-{self.name}-delay", daemon=True
                )
                self._delay_thread.start()
            self._delay_cond.notify()

    def add_rate_limited(self, key: str) -> None:
        """Re-add ``key`` after the rate limiter's delay (counts as a retry)."""
        self._retries.inc()
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: str) -> None:
        """Reset ``key``'s backoff: call after a successful (or abandoned) reconcile."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: str) -> int:
        return self.rate_limiter.num_requeues(key)

    def _run_delays(self) -> None:
        while True:
            due: list[str] = []
            with self._delay_cond:
                while not self.shutting_down:
                    now = time.monotonic()
                    while self._waiting and self._waiting[0][0] <= now:
                        ready_at, _, key = heapq.heappop(self._waiting)
                        # Skip heap entries superseded by an earlier deadline for the same key.
                        if self._waiting_at.get(key) == ready_at:
                            del self._waiting_at[key]
                            due.append(key)
                    if due:
                        break
                    timeout = self._waiting[0][0] - now if self._waiting else None
                    self._delay_cond.wait(timeout)
                else:
                    return
            for key in due:
                self.add(key)
