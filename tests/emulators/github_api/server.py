"""The HTTP server: authentication, faults, rate limits, conditional requests, routing, logging.

``GitHubApiServer`` is the public face of the emulator (see the package docstring). Each request
goes through, in order: path prefix (``/api/v3`` as on GitHub Enterprise), credentials (unknown
token -> 401), injected latency and faults, the rate limit (403 when exhausted), the handler
under the store's lock, then ETag / 304 and the rate-limit headers. Every request is recorded in
``request_log`` with whether it counted against the rate limit and whether it was an ETag hit.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import routes_apps, routes_checks, routes_contents, routes_pulls, routes_repos  # noqa: F401  (register routes)
from .credentials import Credentials, Installation
from .errors import ApiError
from .faults import Faults
from .http_policy import RateLimiter, etag, etag_matches, paginate
from .model import Repo, http_date, make_sha
from .routes_graphql import graphql
from .routing import Ctx, Handler, Response, resolve
from .serializers import Urls
from .store import Event, Store
from .webhooks import Delivery, WebhookDispatcher

API_PREFIX = "/api/v3"
GRAPHQL_PATH = "/api/graphql"


@dataclass
class RequestRecord:
    """``path`` is relative to the API root (``/repos/o/r/pulls``); ``query`` keeps the first values."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    token: str | None
    login: str | None
    counted_against_rate_limit: bool
    etag_hit: bool
    at: float = field(default_factory=time.time)


class GitHubApiServer:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, rate_limit: int = 5000) -> None:
        self.host = host
        self.port = port
        self.faults = Faults()
        self.rate_limiter = RateLimiter(rate_limit)
        self.webhooks = WebhookDispatcher(self.faults)
        self.store = Store(emit=self._on_event)
        self.credentials = Credentials(self.store)
        self.request_log: list[RequestRecord] = []
        self.internal_errors: list[str] = []  # tracebacks of handler bugs (answered 500); tests may assert empty
        self._log_lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> GitHubApiServer:
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        self._httpd = _HTTPServer((self.host, self.port), Handler)
        self.port = self._httpd.server_address[1]
        self.webhooks.start()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="github-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.close_connections()
            self._httpd = None
        self.webhooks.stop()

    def __enter__(self) -> GitHubApiServer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}{API_PREFIX}"

    @property
    def hook_urls(self) -> Urls:
        return Urls(api=self.api_url, web=self.url)

    # -- test controls -----------------------------------------------------------------------
    def add_token(self, token: str, *, login: str) -> None:
        with self.store.lock:
            self.credentials.add_token(token, login)

    def add_app(
        self, app_id: int, *, public_key_pem: str | bytes, slug: str = "replicator", owner: str = "apps"
    ) -> None:
        """Register a GitHub App whose JWTs (RS256, signed with the matching private key) are accepted."""
        with self.store.lock:
            self.credentials.add_app(app_id, public_key_pem, slug=slug, owner=owner)

    def install_app(self, app_id: int, account: str) -> int:
        """Install the app on every repository of ``account``; returns the installation id."""
        with self.store.lock:
            return self.credentials.install(app_id, account).id

    def uninstall_app(self, installation_id: int) -> None:
        with self.store.lock:
            self.credentials.uninstall(installation_id)

    @property
    def installation_token_ttl(self) -> float:
        return self.credentials.installation_token_ttl

    @installation_token_ttl.setter
    def installation_token_ttl(self, seconds: float) -> None:
        self.credentials.installation_token_ttl = seconds

    def add_org(self, login: str, *, members: list[str] = ()) -> None:  # type: ignore[assignment]
        with self.store.lock:
            org = self.store.org(login)
            org.members.update(members)

    def set_rate_limit(
        self, token: str | None, *, remaining: int | None = None, reset_in_seconds: float | None = None
    ) -> None:
        """``token`` is a personal token, an installation token (its installation's bucket), or a
        rate key such as ``installation:<id>`` / ``app:<id>``; ``None`` is the anonymous bucket."""
        key = token
        if token in self.credentials.installation_tokens:
            key = f"installation:{self.credentials.installation_tokens[token][0].id}"
        self.rate_limiter.set(key, remaining=remaining, reset_in_seconds=reset_in_seconds)

    def clear_request_log(self) -> None:
        with self._log_lock:
            self.request_log.clear()

    @property
    def deliveries(self) -> list[Delivery]:
        return self.webhooks.deliveries

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        """Block until every webhook queued so far was attempted (use instead of sleeping)."""
        return self.webhooks.wait_idle(timeout)

    def push(
        self,
        owner: str,
        repo: str,
        branch: str,
        *,
        message: str = "change",
        login: str | None = None,
        committed_at: float | None = None,
    ) -> str:
        """Convenience for tests: commit on top of ``branch`` (created from the default branch if
        missing) and move it, exactly as ``POST git/commits`` + ``PATCH git/refs`` would. Returns the sha."""
        with self.store.lock:
            r = self.store.repos[(owner.lower(), repo.lower())]
            sender = self.store.user(login or r.owner.login)
            start = r.branches.get(branch, r.branches[r.default_branch])
            commit = self.store.create_commit(
                r, message=message, tree=make_sha("tree"), parents=[start], author=sender, committed_at=committed_at
            )
            if branch in r.branches:
                self.store.move_branch(r, branch, commit.sha, force=False, sender=sender)
            else:
                self.store.create_ref(r, f"refs/heads/{branch}", commit.sha, sender=sender)
            return commit.sha

    def repo(self, owner: str, name: str) -> Repo:
        """Direct access to a repository's state (read it under ``store.lock``)."""
        return self.store.repos[(owner.lower(), name.lower())]

    # -- internals ---------------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        installation: Installation | None = self.credentials.installation_for(event.repo.owner)
        if installation is not None:
            # GitHub adds this to every event delivered for a repository an App is installed on
            event.extra = {**event.extra, "installation": {"id": installation.id, "node_id": _inst_node(installation)}}
        self.webhooks.enqueue(event, self.hook_urls)

    def page(self, ctx: Ctx, items: list[Any], render: Callable[[Any], Any] | None = None) -> Response:
        """One page of ``items`` (rendered after cutting, so big lists stay cheap) with its Link header."""
        url = f"{ctx.urls.api}{ctx.path}"
        cut = paginate(items, ctx.query, url=url)
        headers = {"Link": cut.link} if cut.link else {}
        body = [render(item) for item in cut.items] if render else cut.items
        return Response(body=body, headers=headers)

    def _record(self, record: RequestRecord) -> None:
        with self._log_lock:
            self.request_log.append(record)

    def handle(self, req: _Handler) -> None:
        parsed = urllib.parse.urlsplit(req.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
        method = req.command
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        host = req.headers.get("Host") or f"{self.host}:{self.port}"
        urls = Urls(api=f"http://{host}{API_PREFIX}", web=f"http://{host}")
        is_graphql = parsed.path == GRAPHQL_PATH
        if not is_graphql and not (parsed.path == API_PREFIX or parsed.path.startswith(API_PREFIX + "/")):
            self._send(req, 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {})
            return
        path = parsed.path if is_graphql else (parsed.path[len(API_PREFIX) :] or "/")
        token = _token(req.headers.get("Authorization"))
        try:
            with self.store.lock:
                principal = self.credentials.authenticate(token)
            auth_error = None
        except ApiError as err:
            principal, auth_error = None, err
        user = principal.user if principal else None
        login = user.login if user else None
        rate_key = principal.rate_key if principal else token
        record = RequestRecord(method, path, query, 0, token, login, False, False)

        def finish(status: int, body: Any, headers: dict[str, str], *, counted: bool, hit: bool = False) -> None:
            record.status, record.counted_against_rate_limit, record.etag_hit = status, counted, hit
            self._record(record)
            self._send(req, status, body, headers)

        if auth_error is not None or principal is None:
            assert auth_error is not None
            finish(auth_error.status, auth_error.body(), {}, counted=False)
            return
        if self.faults.latency_seconds:
            time.sleep(self.faults.latency_seconds)
        rule = self.faults.pick(method, path)
        if rule is not None:
            headers = self.rate_limiter.headers(rate_key)
            message = rule.message or (
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
                if rule.status in (403, 429)
                else "Server Error"
            )
            if rule.retry_after is not None:
                headers["Retry-After"] = str(rule.retry_after)
            finish(
                rule.status,
                {"message": message, "documentation_url": "https://docs.github.com/rest"},
                headers,
                counted=False,
            )
            return
        counted = path not in ("/rate_limit",) and not is_graphql
        if counted:
            try:
                self.rate_limiter.take(rate_key, login)
            except ApiError as err:
                finish(err.status, err.body(), self.rate_limiter.headers(rate_key), counted=False)
                return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            finish(
                400,
                {"message": "Problems parsing JSON", "documentation_url": "https://docs.github.com/rest"},
                self.rate_limiter.headers(rate_key),
                counted=counted,
            )
            return
        try:
            with self.store.lock:
                handler: Handler
                params: dict[str, str]
                if is_graphql and method == "POST":
                    handler, params = graphql, {}
                else:
                    handler, params = resolve(method, path)
                ctx = Ctx(
                    self, self.store, urls, method, path, params, query, body, token, user, principal.app, rate_key
                )
                response = handler(ctx)
                payload = json.dumps(response.body).encode() if response.body is not None else b""
        except ApiError as err:
            headers = {**self.rate_limiter.headers(rate_key), **err.headers}
            finish(err.status, err.body(), headers, counted=counted)
            return
        except Exception:  # an emulator bug: answer like GitHub's 500 and keep the traceback for tests
            self.internal_errors.append(traceback.format_exc())
            finish(500, {"message": "Server Error"}, self.rate_limiter.headers(rate_key), counted=counted)
            return
        headers = dict(response.headers)
        if method == "GET" and response.status == 200:
            tag = etag(payload)
            headers["ETag"] = tag
            headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
            if response.last_modified is not None:
                headers["Last-Modified"] = http_date(response.last_modified)
            if etag_matches(req.headers.get("If-None-Match"), tag) or _not_modified_since(
                req.headers.get("If-None-Match"), req.headers.get("If-Modified-Since"), response.last_modified
            ):
                if counted:
                    self.rate_limiter.refund(rate_key)
                finish(304, None, {**self.rate_limiter.headers(rate_key), **headers}, counted=False, hit=True)
                return
        headers.update(self.rate_limiter.headers(rate_key))
        record.status = response.status
        finish(response.status, payload if response.body is not None else None, headers, counted=counted)

    def _send(self, req: _Handler, status: int, body: Any, headers: dict[str, str]) -> None:
        if isinstance(body, bytes):
            data = body
        elif body is None or status in (204, 304):
            data = b""
        else:
            data = json.dumps(body).encode()
        req.send_response(status)
        if data or status not in (204, 304):
            req.send_header("Content-Type", "application/json; charset=utf-8")
        req.send_header("Content-Length", str(len(data)))
        req.send_header("X-GitHub-Media-Type", "github.v3; format=json")
        req.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
        req.send_header("X-GitHub-Request-Id", uuid.uuid4().hex[:16].upper())
        req.send_header("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
        for key, value in headers.items():
            req.send_header(key, value)
        req.end_headers()
        if data and req.command != "HEAD":
            req.wfile.write(data)


def _inst_node(installation: Installation) -> str:
    from .model import node_id

    return node_id("Integration::Installation", installation.id)


def _token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


def _not_modified_since(if_none_match: str | None, since: str | None, last_modified: float | None) -> bool:
    """``If-Modified-Since`` applies only without ``If-None-Match`` (RFC 7232 section 6)."""
    if if_none_match or not since or last_modified is None:
        return False
    from email.utils import parsedate_to_datetime

    try:
        return int(last_modified) <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError):
        return False


class _HTTPServer(ThreadingHTTPServer):
    """Tracks open keep-alive connections so that ``stop()`` really takes the API away: without
    this a client's pooled connection would go on being served by its handler thread."""

    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    emulator: GitHubApiServer

    def _dispatch(self) -> None:
        try:
            self.emulator.handle(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log is the record."""
