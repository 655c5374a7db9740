"""Events on clone Services that say something new, not the same thing on every resync.

A person running ``kubectl describe svc <clone>`` wants to see when the clone became reachable,
when it stopped being reachable and why, and each warning about the VirtualService once — not a
fresh copy of the same warning every resync period. The recorder in ``controller_common.events``
only de-duplicates within a minute; this memory de-duplicates for as long as the state holds.

Guarantees: the routing state of a Service (``Routed`` / ``NotRouted`` / ``NoVirtualService``)
is reported when it changes (a route that already stood when this process started is not a change,
so a restart records no Event per clone); a warning is reported when it first appears for a Service and
again only after it went away; memory is per Service uid and dropped with :meth:`forget`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from controller_common import objects

EventRecorder = Callable[..., None]
"""``record(involved, reason=..., message=..., event_type=...)``: never raises."""


class Reporter:
    def __init__(self, record_event: EventRecorder) -> None:
        self._record = record_event
        self._lock = threading.Lock()
        self._state: dict[str, tuple[str, str]] = {}
        self._warnings: dict[str, set[str]] = {}

    @staticmethod
    def _id(service: dict[str, Any]) -> str:
        return str(objects.uid(service) or objects.object_key(service))

    def state(self, service: dict[str, Any], reason: str, message: str, *, warning: bool = False) -> None:
        """Report the Service's routing state if it differs from the last one reported."""
        key = self._id(service)
        with self._lock:
            if self._state.get(key) == (reason, message):
                return
            self._state[key] = (reason, message)
        self._record(service, reason=reason, message=message, event_type="Warning" if warning else "Normal")

    def assume(self, service: dict[str, Any], reason: str, message: str) -> None:
        """Take ``reason`` as already reported when nothing is remembered for the Service (a new
        process finding a route that stood before it started): no Event for a state that did not change."""
        with self._lock:
            self._state.setdefault(self._id(service), (reason, message))

    def warnings(self, service: dict[str, Any], reason: str, messages: Iterable[str]) -> None:
        """Report each warning new for this Service; warnings no longer present may come back later."""
        key = self._id(service)
        current = set(messages)
        with self._lock:
            new = current - self._warnings.get(key, set())
            self._warnings[key] = current
        for message in sorted(new):
            self._record(service, reason=reason, message=message, event_type="Warning")

    def once(self, service: dict[str, Any], reason: str, message: str, *, warning: bool = True) -> None:
        """Report an occurrence (a conflict, a fight given up): always, the recorder rate-limits."""
        self._record(service, reason=reason, message=message, event_type="Warning" if warning else "Normal")

    def forget(self, service: dict[str, Any]) -> None:
        key = self._id(service)
        with self._lock:
            self._state.pop(key, None)
            self._warnings.pop(key, None)
