"""Fault injection for tests: failing answers, added latency, dropped webhook deliveries.

``inject`` adds a rule; the first matching rule whose dice roll hits answers instead of the real
handler. ``times`` bounds how often a rule fires (``None`` = forever). A 429 rule carries
``Retry-After`` as GitHub's secondary rate limit does. The dice come from a seeded generator so
a flaky-by-design test is still reproducible.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass


@dataclass
class FaultRule:
    method: str | None
    path_regex: re.Pattern[str] | None
    status: int
    rate: float
    times: int | None
    retry_after: int | None
    message: str | None
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_regex is None or self.path_regex.search(path) is not None


class Faults:
    def __init__(self, seed: int = 0) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.latency_seconds: float = 0.0
        self.drop_webhooks: bool = False

    def inject(
        self,
        *,
        method: str | None = None,
        path_regex: str | None = None,
        status: int = 502,
        rate: float = 1.0,
        times: int | None = None,
        retry_after: int | None = None,
        message: str | None = None,
    ) -> FaultRule:
        """Answer ``status`` to matching requests; paths are relative to the API root."""
        rule = FaultRule(
            method=method,
            path_regex=re.compile(path_regex) if path_regex else None,
            status=status,
            rate=rate,
            times=times,
            retry_after=retry_after,
            message=message,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
        self.latency_seconds = 0.0
        self.drop_webhooks = False

    def pick(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path) and self._random.random() < rule.rate:
                    rule.fired += 1
                    return rule
        return None
