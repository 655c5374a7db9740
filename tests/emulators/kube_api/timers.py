"""One thread running keyed syncs at their due times: the work queue of the emulated controllers.

Like client-go's delaying work queue: adding a key that is already waiting keeps the earlier due
time, so a burst of events costs one sync; a key is never synced by two threads because there is
one thread. Store listeners only add keys (they run under the store lock); syncs run outside any
queue lock and take the store lock themselves, so a sync that writes (and so adds keys) cannot
deadlock. A sync that raises ``ApiError`` (say, the namespace is terminating) is retried a little
later; any other exception is an emulator bug and lands in ``errors`` for the tests to assert on.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import traceback
from collections.abc import Callable, Hashable

from .errors import ApiError

RETRY_SECONDS = 0.2


class KeyedTimers:
    def __init__(self, name: str, handler: Callable[[Hashable], None], errors: list[str]) -> None:
        self.name = name
        self._handler = handler
        self._errors = errors
        self._heap: list[tuple[float, int, Hashable]] = []
        self._due: dict[Hashable, float] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = True
        self._thread: threading.Thread | None = None

    def add(self, key: Hashable, delay: float = 0.0) -> None:
        due = time.monotonic() + max(0.0, delay)
        with self._cond:
            if key in self._due and self._due[key] <= due:
                return
            self._due[key] = due
            heapq.heappush(self._heap, (due, next(self._seq), key))
            self._cond.notify()

    def start(self) -> None:
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _next(self) -> Hashable | None:
        with self._cond:
            while True:
                if self._stopped:
                    return None
                while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                    heapq.heappop(self._heap)  # superseded by an earlier due time, or already run
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                if wait is not None and wait <= 0:
                    _, _, key = heapq.heappop(self._heap)
                    del self._due[key]
                    return key
                self._cond.wait(timeout=wait)

    def _run(self) -> None:
        while (key := self._next()) is not None:
            try:
                self._handler(key)
            except ApiError:
                self.add(key, RETRY_SECONDS)
            except Exception:  # an emulator bug: keep the thread, surface it to the tests
                self._errors.append(f"{self.name} sync {key!r}:\n{traceback.format_exc()}")
