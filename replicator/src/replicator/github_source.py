"""The replicator's only door to GitHub: list a repository's open pull requests, cheaply.

Polling is the source of truth, so the list call runs once per repository per interval for as
long as the controller lives. It must cost nothing when nothing changed: every page is fetched
with ``If-None-Match`` and GitHub answers an unchanged page with a 304 that does not count
against the rate limit. PyGithub's paginated lists do not send ETags, so the pages are fetched
through its requester (the same HTTP session, auth and base URL) and followed by their ``Link``
headers. Rate-limit headers are recorded and a 403/429 for an exhausted budget becomes
:class:`RateLimited` with the time to wait, never a hot retry.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from github import Auth, Github

from replicator.pull_request import PullRequest, pull_request_from_api
from replicator.repository import Repository

_NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')


class GitHubError(Exception):
    """A GitHub request failed; ``status`` is the HTTP status (0 for transport failures)."""

    def __init__(self, message: str, *, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        """True when retrying cannot help until someone changes something (token, repository name)."""
        return self.status in (401, 404, 410, 422)


class RateLimited(GitHubError):
    """The token's budget is exhausted (or a secondary limit hit): wait ``retry_after`` seconds."""


@dataclass(frozen=True)
class RateLimit:
    limit: int | None = None
    remaining: int | None = None
    reset_epoch: int | None = None


@dataclass
class _CachedPage:
    etag: str
    pulls: list[dict[str, Any]]
    next_url: str | None


@dataclass(frozen=True)
class Listing:
    """The open pull requests of one repository, and whether fetching them changed anything."""

    pull_requests: tuple[PullRequest, ...]
    changed: bool
    requests: int = 0
    not_modified: int = 0


RequestObserver = Callable[[str, int], None]
"""Called with (endpoint, status) for every response: the metrics hook."""


@dataclass
class GitHubSource:
    """Fetch open pull requests with conditional requests; safe to share between threads."""

    api_url: str
    token: str | None = None
    timeout: float = 10.0
    per_page: int = 100
    on_response: RequestObserver | None = None
    _pages: dict[str, _CachedPage] = field(default_factory=dict, init=False, repr=False)
    _rate_limit: RateLimit = field(default_factory=RateLimit, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _github: Github = field(init=False, repr=False)

    def __post_init__(self) -> None:
        auth = Auth.Token(self.token) if self.token else None
        # retry=None: PyGithub's default retry sleeps through rate limits inside the call,
        # which would stall a worker for up to an hour. We surface the wait instead.
        self._github = Github(
            base_url=self.api_url.rstrip("/"),
            auth=auth,
            retry=None,
            timeout=int(self.timeout),
            per_page=self.per_page,
        )

    @property
    def rate_limit(self) -> RateLimit:
        return self._rate_limit

    def open_pull_requests(self, repository: Repository) -> Listing:
        """All open pull requests, every page followed; ``changed`` is False when every page was a 304."""
        url: str | None = (
            f"{self.api_url.rstrip('/')}/repos/{repository.owner}/{repository.name}/pulls"
            f"?state=open&per_page={self.per_page}&sort=created&direction=asc"
        )
        pulls: list[dict[str, Any]] = []
        changed = False
        requests = not_modified = 0
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            page, page_changed = self._get_page(url)
            requests += 1
            not_modified += 0 if page_changed else 1
            changed = changed or page_changed
            pulls.extend(page.pulls)
            url = page.next_url
        prs = tuple(pull_request_from_api(p) for p in pulls if p.get("state", "open") == "open")
        return Listing(pull_requests=prs, changed=changed, requests=requests, not_modified=not_modified)

    def _get_page(self, url: str) -> tuple[_CachedPage, bool]:
        with self._lock:
            cached = self._pages.get(url)
        headers = {"If-None-Match": cached.etag} if cached else {}
        try:
            status, response_headers, body = self._github.requester.requestJson("GET", url, headers=headers)
        except Exception as exc:  # transport failures: requests/urllib3 raise many types
            self._observe("pulls", 0)
            raise GitHubError(f"GET {url} failed: {exc}") from exc
        response_headers = {k.lower(): v for k, v in response_headers.items()}
        self._record_rate_limit(response_headers)
        self._observe("pulls", status)
        if status == 304 and cached is not None:
            return cached, False
        if status >= 400 or status < 200:
            raise self._error(url, status, response_headers, body)
        data = json.loads(body) if body else []
        if not isinstance(data, list):
            raise GitHubError(f"GET {url}: expected a list of pull requests", status=status)
        match = _NEXT_LINK.search(response_headers.get("link", ""))
        page = _CachedPage(etag=response_headers.get("etag", ""), pulls=data, next_url=match and match[1])
        if page.etag:
            with self._lock:
                self._pages[url] = page
        return page, True

    def _record_rate_limit(self, headers: dict[str, str]) -> None:
        def number(name: str) -> int | None:
            value = headers.get(name)
            return int(value) if value and value.isdigit() else None

        if "x-ratelimit-remaining" in headers:
            self._rate_limit = RateLimit(
                limit=number("x-ratelimit-limit"),
                remaining=number("x-ratelimit-remaining"),
                reset_epoch=number("x-ratelimit-reset"),
            )

    def _error(self, url: str, status: int, headers: dict[str, str], body: str) -> GitHubError:
        message = _message(body) or f"HTTP {status}"
        retry_after = headers.get("retry-after")
        if status == 429 or (status == 403 and (retry_after or headers.get("x-ratelimit-remaining") == "0")):
            if retry_after and retry_after.isdigit():
                wait = float(retry_after)
            else:
                reset = self._rate_limit.reset_epoch or int(time.time()) + 60
                wait = max(1.0, reset - time.time())
            return RateLimited(f"GET {url}: {message}", status=status, retry_after=wait)
        return GitHubError(f"GET {url}: {message}", status=status)

    def _observe(self, endpoint: str, status: int) -> None:
        if self.on_response is not None:
            self.on_response(endpoint, status)


def _message(body: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get("message") if isinstance(data, dict) else None
