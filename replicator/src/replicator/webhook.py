"""GitHub webhook receiver: the fast path that makes a new commit reach its clone in seconds.

It verifies ``X-Hub-Signature-256`` (HMAC-SHA256 with the shared secret, compared in constant
time) and then only *asks for a refresh* of the repository named in the payload: it never reads
or writes the cluster, and never trusts the payload's pull-request state — the poller fetches the
truth. GitHub does not redeliver a lost webhook, so polling stays the source of truth and this
receiver is an accelerator. Every answer is immediate: 401 for a missing or wrong signature, 400
for a body that is not a JSON object naming a repository, 413 beyond GitHub's 25 MB, 202 accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

from replicator.repository import Repository, parse_repository

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 25 * 1024 * 1024
PULL_REQUEST_ACTIONS = frozenset(
    {
        "opened",
        "reopened",
        "synchronize",
        "closed",
        "labeled",
        "unlabeled",
        "ready_for_review",
        "converted_to_draft",
        "edited",
    }
)


def signature_for(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """Constant-time comparison of GitHub's ``X-Hub-Signature-256`` against our own HMAC."""
    if not header:
        return False
    return hmac.compare_digest(signature_for(secret, body).encode(), header.strip().encode())


def repository_of(payload: dict[str, Any], api_hosts: Mapping[str, str] | None = None) -> Repository:
    """The repository a delivery is about.

    ``repository.url`` is the repository's REST URL; when its API base is one we were configured
    with (``api_hosts``: API base URL -> repository host), that host is the repository's host,
    so a delivery always names the same :class:`Repository` as the origins do. Otherwise
    ``repository.html_url`` (the web host: github.com or the Enterprise host) decides.
    """
    repository = payload.get("repository")
    if not isinstance(repository, dict):
        raise ValueError("payload has no repository object")
    api_url = repository.get("url")
    if isinstance(api_url, str) and api_hosts:
        base, sep, full_name = api_url.rstrip("/").rpartition("/repos/")
        host = api_hosts.get(base.rstrip("/")) if sep else None
        if host is not None and full_name.count("/") == 1:
            owner, name = full_name.split("/")
            return Repository(host=host, owner=owner, name=name)
    url = repository.get("html_url") or repository.get("full_name")
    if not isinstance(url, str):
        raise ValueError("payload repository has neither html_url nor full_name")
    return parse_repository(url)


Outcome = tuple[int, str]


def handle_delivery(
    *,
    secret: bytes,
    event: str | None,
    signature: str | None,
    body: bytes,
    on_repository: Callable[[Repository], None],
    content_type: str | None = None,
    api_hosts: Mapping[str, str] | None = None,
) -> Outcome:
    """Decide the answer to one delivery (pure apart from ``on_repository``); returns (status, result).

    The signature covers the raw body, so it is checked first, whatever the content type: JSON,
    or GitHub's default ``application/x-www-form-urlencoded`` with the JSON in ``payload``.
    """
    if not verify_signature(secret, body, signature):
        return 401, "bad-signature" if signature else "missing-signature"
    try:
        if (content_type or "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            form = urllib.parse.parse_qs(body.decode(), strict_parsing=True)
            payload = json.loads(form["payload"][0])
        else:
            payload = json.loads(body)
    except (ValueError, KeyError, UnicodeDecodeError):
        return 400, "malformed"
    if not isinstance(payload, dict):
        return 400, "malformed"
    if event == "ping":
        return 202, "ping"
    if event != "pull_request":
        return 202, "ignored"
    if payload.get("action") not in PULL_REQUEST_ACTIONS:
        return 202, "ignored"
    try:
        repository = repository_of(payload, api_hosts)
    except ValueError:
        return 400, "malformed"
    on_repository(repository)
    return 202, "accepted"


class WebhookServer:
    """A small HTTP server on its own port, answering only ``POST <path>``."""

    def __init__(
        self,
        *,
        bind_address: tuple[str, int],
        path: str,
        secret: bytes,
        on_repository: Callable[[Repository], None],
        on_delivery: Callable[[str, str], None] | None = None,
        api_hosts: Mapping[str, str] | None = None,
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # A slow client cannot hold a thread for long.
            timeout = 10

            def do_POST(self) -> None:
                if self.path.split("?", 1)[0] != path:
                    self._answer(404, "not-found")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._answer(413, "too-large")
                    return
                body = self.rfile.read(length)
                event = self.headers.get("X-GitHub-Event")
                status, result = handle_delivery(
                    secret=secret,
                    event=event,
                    signature=self.headers.get("X-Hub-Signature-256"),
                    body=body,
                    on_repository=on_repository,
                    content_type=self.headers.get("Content-Type"),
                    api_hosts=api_hosts,
                )
                log.info(
                    "webhook delivery",
                    github_event=event,
                    delivery=self.headers.get("X-GitHub-Delivery"),
                    result=result,
                    status=status,
                )
                if on_delivery is not None:
                    on_delivery(event or "unknown", result)
                self._answer(status, result)

            def do_GET(self) -> None:
                self._answer(405, "method-not-allowed")

            def _answer(self, status: int, result: str) -> None:
                data = json.dumps({"result": result}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return  # structlog line above instead of stderr access logs

        self._server = ThreadingHTTPServer(bind_address, Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> WebhookServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
