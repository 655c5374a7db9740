"""The worker loop: take a key from the queue, reconcile it, decide what happens to it next.

Why this exists: both controllers share the same contract with their reconcile function —
``reconcile(key)`` converges one object and *raises* to say "not done". Turning those outcomes
into queue operations, logs and metrics in one place keeps every reconcile free of retry loops,
sleeps and metric bookkeeping.

Guarantees (controller-runtime's ``reconcileHandler``):

==========================================  ========================================  ===============
reconcile outcome                           queue                                     ``result`` label
==========================================  ========================================  ===============
returns                                     ``forget``                                ``success``
raises :class:`~errors.RequeueAfter`        ``forget`` + ``add_after(seconds)``       ``requeue_after``
raises :class:`~errors.TransientError`      ``add_rate_limited``                      ``requeue``
raises a transient error (5xx, 429,         ``add_rate_limited``                      ``error``
409 Conflict, connection failure)
raises :class:`~errors.PermanentError` or   ``forget`` (no hot retry; log and count)  ``error``
a non-transient ApiError (other 4xx)
raises anything else (a bug)                ``add_rate_limited``, logged with         ``error``
                                            traceback; the worker survives
==========================================  ========================================  ===============

``done(key)`` is always called. Each reconcile runs with structlog context ``controller``,
``key`` and ``reconcile_id`` bound, and ends with one summary log line. ``run(stop_event)`` stops
taking keys once ``stop_event`` is set, lets the reconciles in flight finish, and returns.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import structlog

from controller_common import errors
from controller_common import metrics as metrics_mod
from controller_common.workqueue import WorkQueue

log = structlog.get_logger(__name__)

Reconcile = Callable[[str], None]


class Controller:
    """``workers`` threads draining ``queue`` into ``reconcile``."""

    def __init__(
        self,
        name: str,
        *,
        reconcile: Reconcile,
        queue: WorkQueue,
        workers: int = 1,
        metrics: metrics_mod.Metrics | None = None,
        shutdown_timeout: float = 30.0,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.name = name
        self.reconcile = reconcile
        self.queue = queue
        self.workers = workers
        self.shutdown_timeout = shutdown_timeout
        m = metrics if metrics is not None else metrics_mod.current()
        self._total = m.reconcile_total
        self._errors = m.reconcile_errors_total.labels(controller=name)
        self._time = m.reconcile_time_seconds.labels(controller=name)
        self._log = log.bind(controller=name)

    def run(self, stop_event: threading.Event) -> None:
        """Run the workers until ``stop_event`` is set; blocks, then drains in-flight work."""
        threads = [
            threading.Thread(target=self._worker, name=f"{self.name}-worker-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        self._log.info("controller started", workers=self.workers)
        stop_event.wait()
        # Stop intake: get() returns None from now on; workers finish the key they hold.
        self.queue.shutdown()
        deadline = time.monotonic() + self.shutdown_timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        still_running = sum(t.is_alive() for t in threads)
        if still_running:
            self._log.warning("controller stopped with reconciles in flight", in_flight=still_running)
        else:
            self._log.info("controller stopped")

    def _worker(self) -> None:
        while True:
            key = self.queue.get()
            if key is None:
                return
            self.process(key)

    def process_next(self, timeout: float | None = None) -> bool:
        """Process one key if one arrives within ``timeout``; ``False`` otherwise (tests, tools)."""
        key = self.queue.get(timeout)
        if key is None:
            return False
        self.process(key)
        return True

    def process(self, key: str) -> str:
        """Reconcile one key already taken from the queue; returns the ``result`` label."""
        reconcile_id = uuid.uuid4().hex[:16]
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(controller=self.name, key=key, reconcile_id=reconcile_id):
            try:
                result = self._reconcile_one(key)
            finally:
                self.queue.done(key)
            elapsed = time.perf_counter() - started
            self._time.observe(elapsed)
            self._total.labels(controller=self.name, result=result).inc()
            if result == "error":
                self._errors.inc()
            log.info("reconcile finished", result=result, duration_ms=round(elapsed * 1000, 1))
        return result

    def _reconcile_one(self, key: str) -> str:
        try:
            self.reconcile(key)
        except errors.RequeueAfter as requeue:
            self.queue.forget(key)
            self.queue.add_after(key, requeue.seconds)
            log.debug("reconcile requeued", after_seconds=requeue.seconds, reason=str(requeue))
            return "requeue_after"
        except errors.TransientError as exc:
            self.queue.add_rate_limited(key)
            log.info("reconcile not done, will retry", reason=str(exc), requeues=self.queue.num_requeues(key))
            return "requeue"
        except errors.PermanentError as exc:
            self.queue.forget(key)
            log.error("reconcile failed permanently", error=str(exc))
            return "error"
        except errors.ApiError as exc:
            if errors.is_transient(exc):
                self.queue.add_rate_limited(key)
                log.warning(
                    "reconcile failed, will retry",
                    error=str(exc),
                    error_type=type(exc).__name__,
                    requeues=self.queue.num_requeues(key),
                )
            else:
                self.queue.forget(key)
                log.error("reconcile failed permanently", error=str(exc), error_type=type(exc).__name__)
            return "error"
        except Exception as exc:
            # A bug or an unclassified failure: keep the worker alive, keep the key, back off.
            self.queue.add_rate_limited(key)
            if errors.is_transient(exc):
                log.warning("reconcile failed, will retry", error=str(exc), error_type=type(exc).__name__)
            else:
                log.exception("reconcile crashed, will retry", error_type=type(exc).__name__)
            return "error"
        self.queue.forget(key)
        return "success"
