"""Fault injection: make chosen requests fail, slow every request, cut open watches.

Controllers must survive a flaky API server (500s, 429 with Retry-After, write conflicts, dropped
watch connections); these knobs let tests prove it deterministically (``rate=1.0``, ``times=n``)
or statistically (``rate<1``).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import ApiError

VERBS = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
_REASONS = {
    400: ("BadRequest", "injected fault"),
    403: ("Forbidden", "injected fault: forbidden"),
    404: ("NotFound", "injected fault: not found"),
    409: ("Conflict", "the object has been modified; please apply your changes to the latest version and try again"),
    410: ("Expired", "too old resource version"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "The server is currently unable to handle the request (injected fault)"),
    504: ("Timeout", "The server was unable to return a response in the time allotted (injected fault)"),
}


@dataclass
class Fault:
    verb: str | None
    resource: str | None
    status: int
    rate: float
    times: int | None
    retry_after: int
    hits: int = 0
    _owner: Faults | None = field(default=None, repr=False)

    def remove(self) -> None:
        if self._owner is not None:
            self._owner._remove(self)

    def error(self, resource: str, group: str, name: str) -> ApiError:
        reason, message = _REASONS.get(self.status, ("InternalError", "injected fault"))
        details: dict[str, object] = {"name": name, "group": group, "kind": resource}
        headers = {}
        if self.status == 429:
            details["retryAfterSeconds"] = self.retry_after
            headers["Retry-After"] = str(self.retry_after)
        if self.status == 409:
            qualified = f"{resource}.{group}" if group else resource
            message = f'Operation cannot be fulfilled on {qualified} "{name}": {message}'
        return ApiError(self.status, reason, message, details=details, headers=headers)


class Faults:
    def __init__(self, drop_watches: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._drop = drop_watches
        self._random = random.Random(0)
        self.latency_seconds = 0.0

    def inject(
        self,
        verb: str | None = None,
        resource: str | None = None,
        status: int = 500,
        rate: float = 1.0,
        times: int | None = None,
        retry_after: int = 1,
    ) -> Fault:
        """Fail matching requests (``None`` matches any verb/resource); returns a removable handle."""
        if verb is not None and verb not in VERBS:
            raise ValueError(f"unknown verb {verb!r}; expected one of {sorted(VERBS)}")
        fault = Fault(verb, resource, status, rate, times, retry_after, _owner=self)
        with self._lock:
            self._faults.append(fault)
        return fault

    def _remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def match(self, verb: str, resource: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.verb not in (None, verb) or fault.resource not in (None, resource):
                    continue
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                if self._random.random() >= fault.rate:
                    continue
                fault.hits += 1
                return fault
        return None

    def drop_watches(self) -> None:
        """Close every open watch connection abruptly (no terminating chunk), as a proxy reset does."""
        self._drop()

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
        self.latency_seconds = 0.0
