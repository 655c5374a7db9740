"""GitHub webhook receiver: the fast path that makes a new commit reach its clone in seconds.

It verifies ``X-Hub-Signature-256`` (HMAC-SHA256 with the shared secret, compared in constant
time) and then hands the poller what the delivery says: the pull request object of a
``pull_request`` event (signed by GitHub, so authentic as of its event; the poller applies it at
once and confirms it with a list fetch a moment later), or just the repository to refresh. It
never reads or writes the cluster. GitHub does not redeliver a lost webhook, so polling stays
the source of truth and this receiver is an accelerator. Every answer is immediate: 401 for a
missing or wrong signature, 400 for a body that is not a JSON object naming a repository, 413
beyond GitHub's 25 MB, 202 accepted.

Anyone who can reach the port can send junk, so junk costs a bounded answer and nothing more:

* nothing a request says is used before its signature is verified: the metric labels come from
  fixed sets (an unverified request counts as event ``unverified``, a verified one as
  ``pull_request``, ``ping`` or ``other``), so random headers cannot grow ``/metrics``;
* the body is read by ``Content-Length`` only: missing (or a transfer coding) is 411, anything but
  plain digits or conflicting values is 400, beyond the limit is 413, all without reading the body;
* a connection has ``request_timeout`` seconds *in total* to send its request (a per-read timeout
  would let a client dribble one byte at a time forever); a body still incomplete then is 408;
* every connection is closed after its answer, and whatever goes wrong is one structlog line: a
  client that went away is an info line, anything else an error with its traceback, answered 500.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

from replicator.repository import Repository, parse_repository

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 25 * 1024 * 1024
REQUEST_TIMEOUT_SECONDS = 10.0
#: Every value the ``event`` label of a delivery can take: the events the receiver understands,
#: ``other`` for any other verified event, ``unverified`` for a request that was not verified.
EVENT_LABELS = ("pull_request", "ping", "other", "unverified")
UNVERIFIED = "unverified"
SIGNATURE_FAILURES = frozenset({"bad-signature", "missing-signature"})
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
            # The path is the sender's text: only a valid owner/name (never "", "..", "a b") names a repository.
            parsed = parse_repository(full_name)
            return Repository(host=host, owner=parsed.owner, name=parsed.name)
    url = repository.get("html_url") or repository.get("full_name")
    if not isinstance(url, str):
        raise ValueError("payload repository has neither html_url nor full_name")
    return parse_repository(url)


Outcome = tuple[int, str]


def event_label(event: str | None) -> str:
    """The ``event`` label of a *verified* delivery: an event we understand, else ``other``."""
    return event if event in ("pull_request", "ping") else "other"


class Refused(Exception):
    """A request answered before its body is read (or while reading it): status and result."""

    def __init__(self, status: int, result: str) -> None:
        super().__init__(status, result)
        self.status = status
        self.result = result


def announced_length(headers: Message, limit: int = MAX_BODY_BYTES) -> int:
    """The body length a request announces, or :class:`Refused` (411, 400 or 413).

    Only plain ASCII digits: ``int()`` would also take ``+5``, ``1_0``, `` 5`` and other digit
    scripts, and a negative length reads to the end of the stream. A transfer coding overrides
    ``Content-Length`` (RFC 9112), and GitHub never sends one, so it is refused as 411.
    """
    lengths = headers.get_all("Content-Length") or []
    if headers.get("Transfer-Encoding") is not None or not lengths:
        raise Refused(411, "length-required")
    values = {value.strip() for value in lengths}
    value = values.pop()
    if values or not (value.isascii() and value.isdigit()):
        raise Refused(400, "malformed")
    digits = value.lstrip("0") or "0"
    # Compare the digit count first: int() refuses strings beyond 4300 digits.
    if len(digits) > len(str(limit)) or int(digits) > limit:
        raise Refused(413, "too-large")
    return int(digits)


def handle_delivery(
    *,
    secret: bytes,
    event: str | None,
    signature: str | None,
    body: bytes,
    on_repository: Callable[[Repository], None],
    content_type: str | None = None,
    api_hosts: Mapping[str, str] | None = None,
    on_pull_request: Callable[[Repository, dict[str, Any]], None] | None = None,
) -> Outcome:
    """Decide the answer to one delivery (pure apart from the callbacks); returns (status, result).

    The signature covers the raw body, so it is checked first, whatever the content type: JSON,
    or GitHub's default ``application/x-www-form-urlencoded`` with the JSON in ``payload``. A
    verified ``pull_request`` delivery carrying the pull request object goes to
    ``on_pull_request`` (the poller applies it at once and confirms it with a list soon), any other
    accepted one to ``on_repository`` (a refresh now).
    """
    if not verify_signature(secret, body, signature):
        return 401, "bad-signature" if signature else "missing-signature"
    try:
        if (content_type or "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            form = urllib.parse.parse_qs(body.decode(), strict_parsing=True)
            payload = json.loads(form["payload"][0])
        else:
            payload = json.loads(body)
    except (ValueError, KeyError, UnicodeDecodeError, RecursionError):
        # RecursionError: json.loads of deeply nested arrays (``[[[[...``) raises it.
        return 400, "malformed"
    if not isinstance(payload, dict):
        return 400, "malformed"
    if event == "ping":
        return 202, "ping"
    if event != "pull_request":
        return 202, "ignored"
    action = payload.get("action")
    if not isinstance(action, str) or action not in PULL_REQUEST_ACTIONS:
        # Signed is not well-formed: an unhashable action ([], {}) must not reach the set lookup.
        return 202, "ignored"
    try:
        repository = repository_of(payload, api_hosts)
    except ValueError:
        return 400, "malformed"
    pull_request = payload.get("pull_request")
    if on_pull_request is not None and isinstance(pull_request, dict):
        on_pull_request(repository, pull_request)
    else:
        on_repository(repository)
    return 202, "accepted"


class _DeadlineReader(io.RawIOBase):
    """Reads a socket until one deadline for the whole request, however the bytes trickle in."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request deadline passed")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Instead of a traceback on stderr: one structured line (socketserver calls this in ``except``)."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.info("webhook client went away", error=type(error).__name__)
        else:
            log.error("webhook request failed", exc_info=True)


class WebhookServer:
    """A small HTTP server on its own port, answering only ``POST <path>``, one request per connection."""

    def __init__(
        self,
        *,
        bind_address: tuple[str, int],
        path: str,
        secret: bytes,
        on_repository: Callable[[Repository], None],
        on_delivery: Callable[[str, str], None] | None = None,
        api_hosts: Mapping[str, str] | None = None,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        on_pull_request: Callable[[Repository, dict[str, Any]], None] | None = None,
    ) -> None:
        def count(event: str, result: str, status: int, **fields: Any) -> None:
            log.info("webhook delivery", event_label=event, result=result, status=status, **fields)
            if on_delivery is not None:
                on_delivery(event, result)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.rfile.close()
                deadline = time.monotonic() + request_timeout
                self.rfile = io.BufferedReader(_DeadlineReader(self.connection, deadline))

            def handle_expect_100(self) -> bool:
                # Refuse a bad length before the client sends its body, not after.
                if self.command == "POST" and self._ours():
                    try:
                        announced_length(self.headers)
                    except Refused as refused:
                        self._refuse(refused)
                        return False
                return super().handle_expect_100()

            def do_POST(self) -> None:
                try:
                    self._deliver()
                except ConnectionError:
                    raise  # the server's handle_error logs a client that went away
                except Exception:
                    log.error("webhook request failed", exc_info=True)
                    with contextlib.suppress(OSError):
                        self._answer(500, "error")

            def _ours(self) -> bool:
                return self.path.split("?", 1)[0] == path

            def _deliver(self) -> None:
                if not self._ours():
                    self._answer(404, "not-found")
                    return
                try:
                    length = announced_length(self.headers)
                    body = self.rfile.read(length)
                except Refused as refused:
                    self._refuse(refused)
                    return
                except TimeoutError:
                    self._refuse(Refused(408, "timeout"))
                    return
                if len(body) < length:
                    log.info("webhook client went away", error="closed before the end of its body")
                    self.close_connection = True
                    return
                event = self.headers.get("X-GitHub-Event")
                status, result = handle_delivery(
                    secret=secret,
                    event=event,
                    signature=self.headers.get("X-Hub-Signature-256"),
                    body=body,
                    on_repository=on_repository,
                    content_type=self.headers.get("Content-Type"),
                    api_hosts=api_hosts,
                    on_pull_request=on_pull_request,
                )
                if result in SIGNATURE_FAILURES:
                    count(UNVERIFIED, result, status)
                else:
                    # Verified by the secret: the sender's own headers are worth logging.
                    count(
                        event_label(event),
                        result,
                        status,
                        github_event=event,
                        delivery=self.headers.get("X-GitHub-Delivery"),
                    )
                self._answer(status, result)

            def _refuse(self, refused: Refused) -> None:
                count(UNVERIFIED, refused.result, refused.status)
                self._answer(refused.status, refused.result)

            def do_GET(self) -> None:
                self._answer(405, "method-not-allowed")

            def _answer(self, status: int, result: str) -> None:
                # Whatever is left of the request (an unread body) is not ours to parse: close.
                self.close_connection = True
                self.connection.settimeout(request_timeout)
                data = json.dumps({"result": result}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                return  # "webhook delivery" above is the access log

            def log_message(self, format: str, *args: Any) -> None:
                # http.server's own errors (bad request line, headers too large, timeouts); the
                # text may quote the request, so it is cut short.
                log.info("webhook http error", detail=(format % args)[:200])

        self._server = _Server(bind_address, Handler)
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
