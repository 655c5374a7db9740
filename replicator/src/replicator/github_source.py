"""The replicator's only door to GitHub: open pull requests, head commits and image gates, cheaply.

Polling is the source of truth, so these calls run for as long as the controller lives and must
cost nothing when nothing changed: every GET is conditional (``If-None-Match`` with the ETag of
the last answer for that URL) and GitHub answers an unchanged resource with a 304 that does not
count against the rate limit. PyGithub's paginated lists do not send ETags, so requests go
through its requester (the same HTTP session, auth and base URL) and pages are followed by their
``Link`` headers. Rate-limit headers are recorded and a 403/429 for an exhausted budget becomes
:class:`RateLimited` with the time to wait, never a hot retry.

Credentials: a token, or a GitHub App (app id + private key) whose installation is looked up once
per repository owner and whose installation tokens PyGithub refreshes before they expire. They go
only to the hosts the flags configured (:mod:`replicator.github_hosts`): a repository on any other
host raises :class:`UntrustedHost` before a client, a connection or a credential exists for it.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from github import Auth, Github, GithubException, GithubIntegration

from replicator.github_hosts import GitHubHosts
from replicator.github_pacing import ReadPacer
from replicator.pull_request import PullRequest, parse_timestamp, pull_request_from_api
from replicator.repository import Repository

_NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')
FAILED_CONCLUSIONS = frozenset({"failure", "cancelled", "timed_out", "action_required", "skipped", "stale", "neutral"})
"""A completed check run with any of these did not produce an image we may run."""


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

    def __init__(
        self, message: str, *, status: int = 0, retry_after: float | None = None, secondary: bool = False
    ) -> None:
        super().__init__(message, status=status, retry_after=retry_after)
        self.secondary = secondary
        """GitHub's secondary (abuse) limit rather than the exhausted hourly budget."""


SECONDARY_LIMIT_MIN_WAIT = 60.0
SECONDARY_LIMIT_MAX_WAIT = 3600.0
"""GitHub: after a secondary rate limit without ``Retry-After`` "wait at least one minute before
retrying", and wait exponentially longer if it persists (REST docs, "Best practices for using the
REST API" and "Rate limits for the REST API", secondary rate limits)."""

_SECONDARY_MESSAGES = ("secondary rate limit", "abuse detection")


@dataclass(frozen=True)
class RateLimit:
    limit: int | None = None
    remaining: int | None = None
    reset_epoch: int | None = None


@dataclass
class _Cached:
    etag: str
    data: Any
    next_url: str | None


@dataclass(frozen=True)
class Listing:
    """The open pull requests of one repository, and whether fetching them changed anything."""

    pull_requests: tuple[PullRequest, ...]
    changed: bool
    requests: int = 0
    not_modified: int = 0


@dataclass(frozen=True)
class AppCredentials:
    """A GitHub App: its id and the PEM private key (read from ``--github-app-private-key-file``)."""

    app_id: int
    private_key: str = field(repr=False)


RequestObserver = Callable[[str, int], None]
"""Called with (endpoint, status) for every response: the metrics hook."""


class UntrustedHost(GitHubError):
    """The repository is on a host no flag configured: refused before any connection is made."""

    @property
    def permanent(self) -> bool:
        return True


@dataclass
class GitHubSource:
    """Conditional reads of pull requests, commits and checks; safe to share between threads."""

    api_url: str
    token: str | None = None
    app: AppCredentials | None = None
    enterprise_api_urls: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    per_page: int = 100
    write_interval: float = 1.0
    """Seconds between two writes (PyGithub enforces it; GitHub asks for one second)."""
    read_interval: float = 0.0
    """A floor on the seconds between two reads; beyond it reads follow GitHub's limits (:mod:`github_pacing`)."""
    on_response: RequestObserver | None = None
    _cache: dict[tuple[Repository, str], _Cached] = field(default_factory=dict, init=False, repr=False)
    """ETag and answer per (repository, URL): two spellings of one repository (github.com and an
    Enterprise mapping to the same API) are polled as two repositories, and a 304 to one must not
    hide from the other a change it has not seen."""
    _rate_limit: RateLimit = field(default_factory=RateLimit, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _clients: dict[tuple[str, int | None], Github] = field(default_factory=dict, init=False, repr=False)
    _installations: dict[tuple[str, str], int] = field(default_factory=dict, init=False, repr=False)
    _commit_dates: dict[tuple[Repository, str], datetime | None] = field(default_factory=dict, init=False, repr=False)
    _secondary_strikes: int = field(default=0, init=False, repr=False)
    """Secondary limits in a row without a Retry-After: the wait doubles with each."""
    hosts: GitHubHosts = field(init=False)
    _pacer: ReadPacer = field(init=False, repr=False)

    @property
    def rate_limit(self) -> RateLimit:
        return self._rate_limit

    def __post_init__(self) -> None:
        self.hosts = GitHubHosts(api_url=self.api_url, enterprise=self.enterprise_api_urls)
        """The hosts our credentials may go to (the flags'); every request is checked against it."""
        self._pacer = ReadPacer(min_interval=self.read_interval)

    def base_url(self, repository: Repository) -> str:
        """The REST base URL for ``repository``; :class:`UntrustedHost` for a host nobody configured."""
        url = self.hosts.api_url_for(repository)
        if url is None:
            raise UntrustedHost(self.hosts.refusal(repository) or str(repository))
        return url

    # --- what the poller asks ------------------------------------------------------------------

    def open_pull_requests(self, repository: Repository) -> Listing:
        """All open pull requests, every page followed; ``changed`` is False when every page was a 304."""
        url: str | None = (
            f"{self._repo_url(repository)}/pulls?state=open&per_page={self.per_page}&sort=created&direction=asc"
        )
        pulls: list[PullRequest] = []
        changed = False
        requests = not_modified = 0
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            page, page_changed = self._get(repository, url, "pulls", keep=_open_pull_requests)
            requests += 1
            not_modified += 0 if page_changed else 1
            changed = changed or page_changed
            pulls.extend(page.data)
            url = page.next_url
        return Listing(pull_requests=tuple(pulls), changed=changed, requests=requests, not_modified=not_modified)

    def commit_date(self, repository: Repository, sha: str) -> datetime | None:
        """When ``sha`` was committed (committer date). A commit never changes: fetched once per sha."""
        key = (repository, sha)
        with self._lock:
            if key in self._commit_dates:
                return self._commit_dates[key]
        answer, _ = self._get(repository, f"{self._repo_url(repository)}/commits/{sha}", "commit")
        commit = (answer.data or {}).get("commit") or {}
        stamp = parse_timestamp(
            ((commit.get("committer") or {}).get("date")) or (commit.get("author") or {}).get("date")
        )
        with self._lock:
            self._commit_dates[key] = stamp
            self._cache.pop((repository, f"{self._repo_url(repository)}/commits/{sha}"), None)  # keep the date only
        return stamp

    def forget_commits(self, repository: Repository, keep: set[str]) -> None:
        """Drop cached commit dates and gate answers of ``repository`` for shas no longer any head."""
        prefix = f"{self._repo_url(repository)}/commits/"
        with self._lock:
            for key in [k for k in self._commit_dates if k[0] == repository and k[1] not in keep]:
                del self._commit_dates[key]
            for cached_for, url in [k for k in self._cache if k[0] == repository and k[1].startswith(prefix)]:
                if url[len(prefix) :].split("/", 1)[0] not in keep:
                    del self._cache[(cached_for, url)]

    def gate_state(self, repository: Repository, sha: str, name: str) -> bool | None:
        """The image gate on ``sha``: a check run named ``name``, else a commit status with that context.

        ``True`` succeeded, ``False`` failed (completed with any other conclusion, or status
        failure/error), ``None`` not finished or not reported yet. Both reads are conditional.
        """
        base = f"{self._repo_url(repository)}/commits/{sha}"
        url = f"{base}/check-runs?check_name={_quote(name)}&filter=latest"
        runs, _ = self._get(repository, url, "check-runs", keep=_check_runs)
        named = [r for r in (runs.data or {}).get("check_runs") or [] if r.get("name") == name]
        if named:
            latest = max(named, key=lambda r: int(r.get("id") or 0))
            if latest.get("status") != "completed":
                return None
            return bool(latest.get("conclusion") == "success")
        combined, _ = self._get(repository, f"{base}/status", "status", keep=_statuses)
        for status in (combined.data or {}).get("statuses") or []:
            if status.get("context") == name:
                state = status.get("state")
                return True if state == "success" else False if state in ("failure", "error") else None
        return None

    # --- feedback writes (deployments, the sticky comment) ----------------------------------------

    def find_deployment(self, repository: Repository, environment: str, sha: str) -> int | None:
        """The newest deployment of ``sha`` to ``environment`` (conditional read), if any."""
        query = urllib.parse.urlencode({"environment": environment, "sha": sha, "per_page": 1})
        answer, _ = self._get(repository, f"{self._repo_url(repository)}/deployments?{query}", "deployments")
        items = answer.data or []
        return int(items[0]["id"]) if items else None

    def recent_deployments(self, repository: Repository) -> list[tuple[int, str, str]]:
        """(id, environment, sha) of the repository's newest deployments (one conditional page, newest first)."""
        url = f"{self._repo_url(repository)}/deployments?per_page={self.per_page}"
        answer, _ = self._get(repository, url, "deployments", keep=_deployments)
        return list(answer.data)

    def latest_deployment_status(self, repository: Repository, deployment_id: int) -> tuple[str, str] | None:
        """(state, description) of the newest status of a deployment, if it has one."""
        url = f"{self._repo_url(repository)}/deployments/{deployment_id}/statuses?per_page=1"
        answer, _ = self._get(repository, url, "deployment-statuses")
        items = answer.data or []
        return (str(items[0].get("state")), str(items[0].get("description") or "")) if items else None

    def create_deployment(self, repository: Repository, *, sha: str, environment: str, description: str) -> int:
        body = {
            "ref": sha,
            "environment": environment,
            "description": description,
            "auto_merge": False,
            "required_contexts": [],  # the image gate already decided; never block on unrelated checks
            "transient_environment": True,
            "production_environment": False,
        }
        data = self._write(repository, "POST", f"{self._repo_url(repository)}/deployments", body, "deployments")
        return int(data["id"])

    def create_deployment_status(
        self, repository: Repository, deployment_id: int, *, state: str, description: str
    ) -> None:
        url = f"{self._repo_url(repository)}/deployments/{deployment_id}/statuses"
        body = {"state": state, "description": description, "auto_inactive": True}
        self._write(repository, "POST", url, body, "deployment-statuses")

    def find_comment(self, repository: Repository, number: int, marker: str) -> tuple[int, str] | None:
        """The first comment on the pull request containing ``marker``: (id, body). All pages, conditional."""
        url: str | None = f"{self._repo_url(repository)}/issues/{number}/comments?per_page={self.per_page}"
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            page, _ = self._get(repository, url, "comments")
            for comment in page.data or []:
                if marker in str(comment.get("body") or ""):
                    return int(comment["id"]), str(comment["body"])
            url = page.next_url
        return None

    def create_comment(self, repository: Repository, number: int, body: str) -> int:
        url = f"{self._repo_url(repository)}/issues/{number}/comments"
        return int(self._write(repository, "POST", url, {"body": body}, "comments")["id"])

    def edit_comment(self, repository: Repository, comment_id: int, body: str) -> None:
        url = f"{self._repo_url(repository)}/issues/comments/{comment_id}"
        self._write(repository, "PATCH", url, {"body": body}, "comments")

    # --- plumbing ---------------------------------------------------------------------------------

    def _repo_url(self, repository: Repository) -> str:
        return f"{self.base_url(repository)}/repos/{repository.owner}/{repository.name}"

    def _client(self, repository: Repository) -> Github:
        base = self.base_url(repository)
        installation = self._installation_id(repository, base) if self.app is not None else None
        key = (base, installation)
        with self._lock:
            client = self._clients.get(key)
        if client is not None:
            return client
        auth: Auth.Auth | None
        if self.app is not None and installation is not None:
            # AppInstallationAuth fetches an installation token lazily and refreshes it before expiry.
            auth = Auth.AppAuth(self.app.app_id, self.app.private_key).get_installation_auth(installation)
        else:
            auth = Auth.Token(self.token) if self.token else None
        # retry=None: PyGithub's default retry sleeps through rate limits inside the call,
        # which would stall a worker for up to an hour. We surface the wait instead.
        client = Github(
            base_url=base,
            auth=auth,
            retry=None,
            timeout=int(self.timeout),
            per_page=self.per_page,
            seconds_between_writes=self.write_interval or None,
            seconds_between_requests=None,  # reads are paced by self._pacer, from GitHub's own limits
        )
        with self._lock:
            return self._clients.setdefault(key, client)

    def _installation_id(self, repository: Repository, base: str) -> int:
        assert self.app is not None
        key = (base, repository.owner.lower())
        with self._lock:
            if key in self._installations:
                return self._installations[key]
        integration = GithubIntegration(
            auth=Auth.AppAuth(self.app.app_id, self.app.private_key), base_url=base, retry=None
        )
        try:
            installation = integration.get_repo_installation(repository.owner, repository.name)
        except GithubException as exc:
            self._observe("installation", exc.status)
            raise GitHubError(
                f"the GitHub App {self.app.app_id} is not installed on {repository.full_name} ({exc.status})",
                status=exc.status,
            ) from exc
        except Exception as exc:
            self._observe("installation", 0)
            raise GitHubError(f"looking up the installation for {repository.full_name} failed: {exc}") from exc
        self._observe("installation", 200)
        with self._lock:
            self._installations[key] = int(installation.id)
        return int(installation.id)

    def _get(
        self, repository: Repository, url: str, endpoint: str, *, keep: Callable[[str, Any], Any] | None = None
    ) -> tuple[_Cached, bool]:
        """One conditional GET; (answer, changed). A 304 returns the cached answer unchanged.

        ``keep(url, data)`` turns the parsed JSON into what is remembered with the ETag: the few
        fields a caller reads, not the whole answer (a pull request's JSON is about 29 KB, most of
        it links and nested repositories). It raises :class:`GitHubError` for an answer of the
        wrong shape.
        """
        with self._lock:
            cached = self._cache.get((repository, url))
        headers = {"If-None-Match": cached.etag} if cached else {}
        client = self._client(repository)
        budget = self._rate_limit
        wait = self._pacer.wait(limit=budget.limit, remaining=budget.remaining, reset_epoch=budget.reset_epoch)
        if wait > 0:
            raise RateLimited(
                f"GET {url}: {budget.remaining} of {budget.limit} requests left until the reset; "
                f"spreading them, next in {wait:.0f} s",
                retry_after=wait,
            )
        try:
            status, response_headers, body = client.requester.requestJson("GET", url, headers=headers)
        except Exception as exc:  # transport failures: requests/urllib3 raise many types
            self._observe(endpoint, 0)
            raise GitHubError(f"GET {url} failed: {exc}") from exc
        response_headers = {k.lower(): v for k, v in response_headers.items()}
        self._record_rate_limit(response_headers)
        self._observe(endpoint, status)
        if status == 304 and cached is not None:
            self._secondary_strikes = 0
            return cached, False
        if status >= 400 or status < 200:
            raise self._error(url, status, response_headers, body)
        self._secondary_strikes = 0
        data = json.loads(body) if body else None
        if keep is not None:
            data = keep(url, data)
        match = _NEXT_LINK.search(response_headers.get("link", ""))
        answer = _Cached(etag=response_headers.get("etag", ""), data=data, next_url=match and match[1])
        if answer.etag:
            with self._lock:
                self._cache[(repository, url)] = answer
        return answer, True

    def _write(self, repository: Repository, method: str, url: str, body: Any, endpoint: str) -> Any:
        client = self._client(repository)
        try:
            status, response_headers, text = client.requester.requestJson(method, url, input=body)
        except Exception as exc:
            self._observe(endpoint, 0)
            raise GitHubError(f"{method} {url} failed: {exc}") from exc
        response_headers = {k.lower(): v for k, v in response_headers.items()}
        self._record_rate_limit(response_headers)
        self._observe(endpoint, status)
        if status >= 400 or status < 200:
            raise self._error(url, status, response_headers, text, method=method)
        self._secondary_strikes = 0
        return json.loads(text) if text else None

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

    def _error(self, url: str, status: int, headers: dict[str, str], body: str, *, method: str = "GET") -> GitHubError:
        message = _message(body) or f"HTTP {status}"
        retry_after = headers.get("retry-after")
        exhausted = headers.get("x-ratelimit-remaining") == "0"
        secondary = any(text in message.lower() for text in _SECONDARY_MESSAGES)
        if status == 429 or (status == 403 and (retry_after or exhausted or secondary)):
            if retry_after and retry_after.isdigit():
                wait = float(retry_after)
            elif exhausted:
                reset = self._rate_limit.reset_epoch or int(time.time()) + 60
                wait = max(1.0, reset - time.time())
            else:
                # A secondary limit that names no time: a minute, doubling while it lasts.
                wait = min(SECONDARY_LIMIT_MAX_WAIT, SECONDARY_LIMIT_MIN_WAIT * 2**self._secondary_strikes)
                self._secondary_strikes += 1
            return RateLimited(
                f"{method} {url}: {message}", status=status, retry_after=wait, secondary=secondary or not exhausted
            )
        return GitHubError(f"{method} {url}: {message}", status=status)

    def _observe(self, endpoint: str, status: int) -> None:
        if self.on_response is not None:
            self.on_response(endpoint, status)

    def check_credentials(self) -> str | None:
        """Who the credentials are, asked once at start-up of the ``api_url`` host: ``GET /user`` for
        a token, ``GET /app`` (signed with the App's key) for an App. None without credentials (no
        request). A :class:`GitHubError` carries the status: 401 rejected, 0 transport or signing."""
        if self.app is not None:
            auth = Auth.AppAuth(self.app.app_id, self.app.private_key)
            try:
                auth.token  # noqa: B018 - signs a JWT: a key that cannot sign is rejected here, not at GitHub
            except Exception as exc:
                raise GitHubError(f"the private key cannot sign a JWT: {exc}", status=401) from exc
            try:
                app = GithubIntegration(
                    auth=auth, base_url=self.api_url, retry=None, timeout=int(self.timeout)
                ).get_app()
            except GithubException as exc:
                message = exc.data.get("message") if isinstance(exc.data, dict) else None
                raise GitHubError(f"GET {self.api_url}/app: {message or exc.status}", status=exc.status) from exc
            except Exception as exc:
                raise GitHubError(f"GET {self.api_url}/app failed: {exc}") from exc
            return str(app.slug)
        if not self.token:
            return None
        client = Github(base_url=self.api_url, auth=Auth.Token(self.token), retry=None, timeout=int(self.timeout))
        url = f"{self.api_url}/user"
        try:
            status, headers, body = client.requester.requestJson("GET", url)
        except Exception as exc:
            raise GitHubError(f"GET {url} failed: {exc}") from exc
        if not 200 <= status < 300:
            raise self._error(url, status, {k.lower(): v for k, v in headers.items()}, body)
        return str((json.loads(body) if body else {}).get("login"))


def _open_pull_requests(url: str, data: Any) -> tuple[PullRequest, ...]:
    if not isinstance(data, list):
        raise GitHubError(f"GET {url}: expected a list of pull requests", status=200)
    return tuple(pull_request_from_api(p) for p in data if p.get("state", "open") == "open")


def _deployments(url: str, data: Any) -> tuple[tuple[int, str, str], ...]:
    if not isinstance(data, list):
        raise GitHubError(f"GET {url}: expected a list of deployments", status=200)
    return tuple(
        (int(d["id"]), str(d.get("environment") or ""), str(d.get("sha") or ""))
        for d in data
        if isinstance(d, dict) and isinstance(d.get("id"), int)
    )


def _check_runs(_url: str, data: Any) -> dict[str, Any]:
    runs = (data or {}).get("check_runs") or [] if isinstance(data, dict) else []
    fields = ("id", "name", "status", "conclusion")
    return {"check_runs": [{k: r.get(k) for k in fields} for r in runs if isinstance(r, dict)]}


def _statuses(_url: str, data: Any) -> dict[str, Any]:
    statuses = (data or {}).get("statuses") or [] if isinstance(data, dict) else []
    return {"statuses": [{k: s.get(k) for k in ("context", "state")} for s in statuses if isinstance(s, dict)]}


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _message(body: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get("message") if isinstance(data, dict) else None
