"""Kubernetes Events for outcomes a user must see (``kubectl describe`` shows them).

Why this exists: logs are for operators; a developer whose pull request got no environment
looks at the Deployment or Service. Both controllers record the same kind of core/v1 Event,
the way client-go's ``EventRecorder`` does.

Guarantees:

- :func:`record_event` never raises: an Event is a side channel, and failing a reconcile because
  the Event could not be written would turn a reporting problem into an outage. Failures are
  logged and counted (``<prefix>_events_total{result="failed"}``).
- Identical events (same object uid, type, reason, message) within ``window`` seconds are
  recorded once per process, so a hot requeue loop cannot flood the API server. Unlike
  client-go we do not patch ``count`` on an existing Event; a new Event per window is simpler
  and enough for humans reading ``describe``.
- The recorders reconcilers get (:func:`recorder_for`) hand the Event to a sender thread and
  return at once, as client-go's broadcaster does: a reconcile never waits for a round trip that
  only reports. The queue is bounded (``MAX_PENDING``); beyond it an Event is dropped and counted
  (``result="dropped"``). Pending Events are flushed, for a few seconds at most, when the process exits.
"""

from __future__ import annotations

import atexit
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from controller_common import metrics as metrics_mod
from controller_common import objects
from controller_common.kube import EVENTS, KubeClient

log = structlog.get_logger(__name__)

DEDUP_WINDOW_SECONDS = 60.0
MAX_MESSAGE_LENGTH = 1024  # the API server's limit for events.k8s.io notes; keep core/v1 the same
_HOSTNAME = os.environ.get("POD_NAME") or socket.gethostname()


def build_event(
    *, involved: Mapping[str, Any], reason: str, message: str, event_type: str, component: str, now: str
) -> dict[str, Any]:
    """The core/v1 Event body for ``involved`` (pure; exposed for tests and dry runs)."""
    meta = involved.get("metadata") or {}
    name = str(meta.get("name") or "unknown")
    namespace = meta.get("namespace") or "default"  # cluster-scoped objects: events go to default
    reference = {
        "kind": involved.get("kind"),
        "apiVersion": involved.get("apiVersion"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    if len(message) > MAX_MESSAGE_LENGTH:
        message = message[: MAX_MESSAGE_LENGTH - 3] + "..."
    return {
        "apiVersion": "v1",
        "kind": "Event",
        # client-go names events <object>.<unix nanos in hex>: unique and sortable.
        "metadata": {"name": f"{name}.{time.time_ns():x}", "namespace": namespace},
        "involvedObject": {k: v for k, v in reference.items() if v},
        "reason": reason,
        "message": message,
        "type": event_type,
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "source": {"component": component, "host": _HOSTNAME},
        "reportingComponent": component,
        "reportingInstance": _HOSTNAME,
    }


class EventRecorder:
    """Records Events with in-process de-duplication; thread-safe."""

    def __init__(
        self,
        *,
        window: float = DEDUP_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        metrics: metrics_mod.Metrics | None = None,
    ) -> None:
        self.window = window
        self._clock = clock
        self._metrics = metrics
        self._recent: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def record(
        self,
        client: KubeClient,
        *,
        involved: Mapping[str, Any],
        reason: str,
        message: str,
        event_type: str = "Normal",
        component: str,
    ) -> bool:
        """Create the Event unless an identical one was recorded recently; ``True`` if created."""
        counter = (self._metrics or metrics_mod.current()).events_total
        identity = (
            objects.uid(involved) or objects.object_key(involved),
            str(involved.get("kind")),
            event_type,
            reason,
            message,
        )
        now = self._clock()
        with self._lock:
            last = self._recent.get(identity)
            if last is not None and now - last < self.window:
                counter.labels(result="deduplicated").inc()
                return False
            self._recent[identity] = now
            if len(self._recent) > 4096:  # bound memory: drop entries older than the window
                self._recent = {k: t for k, t in self._recent.items() if now - t < self.window}
        try:
            body = build_event(
                involved=involved,
                reason=reason,
                message=message,
                event_type=event_type,
                component=component,
                now=objects.now_rfc3339(),
            )
            client.create(EVENTS, body)
        except Exception as exc:
            with self._lock:
                self._recent.pop(identity, None)  # let the next attempt try again
            counter.labels(result="failed").inc()
            log.warning(
                "event not recorded",
                object=objects.object_key(involved),
                reason=reason,
                error=str(exc),
                error_type=type(exc).__name__,
            )
            return False
        counter.labels(result="created").inc()
        return True


_default = EventRecorder()


def record_event(
    client: KubeClient,
    *,
    involved: Mapping[str, Any],
    reason: str,
    message: str,
    event_type: str = "Normal",
    component: str,
) -> None:
    """Record a core/v1 Event about ``involved``; never raises (see the module docstring)."""
    _default.record(
        client, involved=involved, reason=reason, message=message, event_type=event_type, component=component
    )


MAX_PENDING = 1000
FLUSH_SECONDS = 3.0


class EventSender:
    """One thread that writes the Events handed to it, in order; ``send`` never blocks."""

    def __init__(
        self,
        client: KubeClient,
        component: str,
        *,
        max_pending: int = MAX_PENDING,
        metrics: metrics_mod.Metrics | None = None,
    ) -> None:
        self._client = client
        self._component = component
        self._metrics = metrics
        # An Event to write (the involved object, record_event's keywords), or a flush marker.
        self._pending: queue.Queue[tuple[Mapping[str, Any], dict[str, Any]] | threading.Event] = queue.Queue(
            max_pending
        )
        self._thread = threading.Thread(target=self._run, name=f"{component}-events", daemon=True)
        self._thread.start()

    def send(self, involved: Mapping[str, Any], **kwargs: Any) -> None:
        try:
            self._pending.put_nowait((involved, kwargs))
        except queue.Full:
            (self._metrics or metrics_mod.current()).events_total.labels(result="dropped").inc()
            log.warning("event dropped: too many pending", object=objects.object_key(involved), **kwargs)

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Wait until every Event handed over so far was written (or failed); False on timeout."""
        done = threading.Event()
        try:
            self._pending.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            item = self._pending.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            involved, kwargs = item
            record_event(self._client, involved=involved, component=self._component, **kwargs)


def recorder_for(client: KubeClient, component: str) -> Callable[..., None]:
    """``record(involved, reason=..., message=..., event_type=...)`` bound to one client and component:
    the shape reconcilers take, so they never need the client or their own name to report. It
    returns at once; a sender thread writes the Event (see the module docstring)."""
    sender = EventSender(client, component)
    atexit.register(sender.flush)
    return sender.send
