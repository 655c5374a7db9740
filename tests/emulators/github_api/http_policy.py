"""What GitHub does around every response: rate limits, conditional requests and pagination.

- Rate limits are per token (anonymous callers share one bucket of 60), with GitHub's
  ``X-RateLimit-*`` headers on every answer; an exhausted bucket answers 403 with GitHub's message.
- ``ETag`` is a weak validator over the body; ``If-None-Match`` that matches answers 304 with no
  body and is not counted against the limit (GitHub's documented behaviour for conditional
  requests). ``Last-Modified``/``If-Modified-Since`` likewise for single objects.
- Lists are cut into pages with ``per_page`` (default 30, max 100) and ``page``, with an RFC 5988
  ``Link`` header of absolute URLs (first/prev/next/last) that PyGithub follows.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from .errors import ApiError

WINDOW_SECONDS = 3600
ANONYMOUS_LIMIT = 60


@dataclass
class Bucket:
    limit: int
    remaining: int
    reset: float

    def refresh(self) -> None:
        if time.time() >= self.reset:
            self.remaining = self.limit
            self.reset = time.time() + WINDOW_SECONDS


class RateLimiter:
    """One bucket per token; ``None`` is the anonymous bucket."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buckets: dict[str | None, Bucket] = {}
        self._lock = threading.Lock()

    def bucket(self, token: str | None) -> Bucket:
        with self._lock:
            if token not in self._buckets:
                limit = self.limit if token is not None else ANONYMOUS_LIMIT
                self._buckets[token] = Bucket(limit, limit, time.time() + WINDOW_SECONDS)
            b = self._buckets[token]
            b.refresh()
            return b

    def set(self, token: str | None, *, remaining: int | None = None, reset_in_seconds: float | None = None) -> None:
        b = self.bucket(token)
        with self._lock:
            if remaining is not None:
                b.remaining = max(0, min(remaining, b.limit))
            if reset_in_seconds is not None:
                b.reset = time.time() + reset_in_seconds

    def check(self, token: str | None, login: str | None) -> None:
        b = self.bucket(token)
        if b.remaining <= 0:
            who = f"user ID {login}" if login else "127.0.0.1"
            raise ApiError(
                403,
                f"API rate limit exceeded for {who}. If you reach out to GitHub Support for help, "
                "please include the request ID.",
            )

    def take(self, token: str | None, login: str | None) -> None:
        """Check and spend one request atomically (403 when the bucket is empty)."""
        b = self.bucket(token)
        with self._lock:
            if b.remaining > 0:
                b.remaining -= 1
                return
        self.check(token, login)

    def refund(self, token: str | None) -> None:
        """Give back a request that turned out free (a 304)."""
        b = self.bucket(token)
        with self._lock:
            b.remaining = min(b.limit, b.remaining + 1)

    def headers(self, token: str | None) -> dict[str, str]:
        b = self.bucket(token)
        return {
            "X-RateLimit-Limit": str(b.limit),
            "X-RateLimit-Remaining": str(b.remaining),
            "X-RateLimit-Reset": str(math.ceil(b.reset)),
            "X-RateLimit-Used": str(b.limit - b.remaining),
            "X-RateLimit-Resource": "core",
        }

    def overview(self, token: str | None) -> dict[str, Any]:
        b = self.bucket(token)
        core = {
            "limit": b.limit,
            "used": b.limit - b.remaining,
            "remaining": b.remaining,
            "reset": math.ceil(b.reset),
        }
        other = {"limit": 30, "used": 0, "remaining": 30, "reset": math.ceil(time.time() + 60)}
        graphql = {"limit": b.limit, "used": 0, "remaining": b.limit, "reset": math.ceil(b.reset)}
        return {"resources": {"core": core, "search": other, "graphql": graphql}, "rate": core}


def etag(body: bytes) -> str:
    return 'W/"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def etag_matches(if_none_match: str | None, tag: str) -> bool:
    """RFC 7232 weak comparison: ``W/`` prefixes are ignored; ``*`` matches anything."""
    if not if_none_match:
        return False

    def bare(t: str) -> str:
        t = t.strip()
        return t[2:] if t.startswith("W/") else t

    candidates = [c for c in if_none_match.split(",") if c.strip()]
    return any(c.strip() == "*" or bare(c) == bare(tag) for c in candidates)


@dataclass
class Page:
    items: list[Any]
    link: str | None


def paginate(items: list[Any], query: dict[str, str], *, url: str) -> Page:
    """Cut ``items`` by ``per_page``/``page`` and build GitHub's ``Link`` header for ``url``."""
    try:
        per_page = int(query.get("per_page", "30"))
    except ValueError:
        per_page = 30
    per_page = max(1, min(per_page, 100))
    try:
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        page = 1
    last = max(1, math.ceil(len(items) / per_page))
    chunk = items[(page - 1) * per_page : page * per_page]

    def link(n: int, rel: str) -> str:
        q = dict(query)
        q["per_page"] = str(per_page)
        q["page"] = str(n)
        return f'<{url}?{urllib.parse.urlencode(q)}>; rel="{rel}"'

    rels = []
    if page > 1:
        rels.append(link(min(page - 1, last), "prev"))
    if page < last:
        rels.append(link(page + 1, "next"))
        rels.append(link(last, "last"))
    if page > 1:
        rels.append(link(1, "first"))
    return Page(chunk, ", ".join(rels) or None)
