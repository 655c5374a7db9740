"""The webhook receiver verifies signatures, accepts GitHub's real payloads, and only enqueues.

Junk never costs more than a bounded answer: metric labels come from a fixed set, every request
gets a status (or a clean close), and a slow or vanishing client frees its thread on time.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import string
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import structlog
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.samples import Sample

from replicator import webhook
from replicator.repository import Repository
from replicator.webhook import WebhookServer, handle_delivery, signature_for

SECRET = b"s3cret"
ACTIONS = [
    "opened",
    "synchronize",
    "closed",
    "reopened",
    "labeled",
    "unlabeled",
    "converted_to_draft",
    "ready_for_review",
]


def _deliver(body: bytes, *, event: str = "pull_request", signature: str | None = "good") -> tuple[int, str, list]:
    seen: list[Repository] = []
    if signature == "good":
        signature = signature_for(SECRET, body)
    status, result = handle_delivery(
        secret=SECRET, event=event, signature=signature, body=body, on_repository=seen.append
    )
    return status, result, seen


@pytest.mark.parametrize("action", ACTIONS)
def test_real_pull_request_payloads_are_accepted_and_name_their_repository(shared_dir: Path, action: str) -> None:
    body = (shared_dir / "fixtures/github/webhooks/pull_request" / f"{action}.json").read_bytes()
    expected = json.loads(body)["repository"]["full_name"]
    status, result, seen = _deliver(body)
    assert (status, result) == (202, "accepted")
    assert [r.full_name for r in seen] == [expected]


def test_ping_is_accepted_without_enqueueing(shared_dir: Path) -> None:
    body = (shared_dir / "fixtures/github/webhooks/ping.json").read_bytes()
    assert _deliver(body, event="ping") == (202, "ping", [])


def test_other_events_are_ignored(shared_dir: Path) -> None:
    body = (shared_dir / "fixtures/github/webhooks/push.json").read_bytes()
    assert _deliver(body, event="push") == (202, "ignored", [])


@pytest.mark.parametrize(
    ("signature", "expected"),
    [(None, "missing-signature"), ("sha256=" + "0" * 64, "bad-signature"), ("garbage", "bad-signature")],
    ids=["missing", "wrong", "malformed"],
)
def test_bad_signatures_are_rejected_before_parsing(signature: str | None, expected: str) -> None:
    body = json.dumps({"action": "opened", "repository": {"html_url": "https://github.com/o/r"}}).encode()
    assert _deliver(body, signature=signature) == (401, expected, [])


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({"action": "opened"}).encode(),
        json.dumps({"action": "opened", "repository": {"html_url": "nope"}}).encode(),
    ],
    ids=["not-json", "not-object", "no-repository", "bad-repository"],
)
def test_malformed_bodies_are_400(body: bytes) -> None:
    assert _deliver(body)[:2] == (400, "malformed")


def test_server_answers_over_http_and_calls_back_only_for_good_deliveries() -> None:
    seen: list[Repository] = []
    deliveries: list[tuple[str, str]] = []
    server = WebhookServer(
        bind_address=("127.0.0.1", 0),
        path="/webhook",
        secret=SECRET,
        on_repository=seen.append,
        on_delivery=lambda e, r: deliveries.append((e, r)),
    ).start()
    try:
        url = f"http://127.0.0.1:{server.port}/webhook"
        body = json.dumps({"action": "synchronize", "repository": {"html_url": "https://github.com/org/app"}}).encode()
        headers = {"X-GitHub-Event": "pull_request", "Content-Type": "application/json"}
        bad = requests.post(url, data=body, headers={**headers, "X-Hub-Signature-256": "sha256=00"}, timeout=5)
        good = requests.post(
            url, data=body, headers={**headers, "X-Hub-Signature-256": signature_for(SECRET, body)}, timeout=5
        )
        elsewhere = requests.post(f"http://127.0.0.1:{server.port}/other", data=body, timeout=5)
    finally:
        server.stop()
    assert (bad.status_code, good.status_code, elsewhere.status_code) == (401, 202, 404)
    assert [r.full_name for r in seen] == ["org/app"]
    assert deliveries == [("unverified", "bad-signature"), ("pull_request", "accepted")]


def test_form_encoded_payloads_are_accepted_like_json(shared_dir: Path) -> None:
    """GitHub's default content type wraps the JSON in ``payload=``; the signature covers the form."""
    import urllib.parse

    text = (shared_dir / "fixtures/github/webhooks/pull_request/opened.json").read_text()
    body = urllib.parse.urlencode({"payload": text}).encode()
    seen: list[Repository] = []
    status, result = handle_delivery(
        secret=SECRET,
        event="pull_request",
        signature=signature_for(SECRET, body),
        body=body,
        on_repository=seen.append,
        content_type="application/x-www-form-urlencoded",
    )
    assert (status, result) == (202, "accepted") and len(seen) == 1
    garbled = b"payload=%7Bnot-json"
    assert handle_delivery(
        secret=SECRET,
        event="pull_request",
        signature=signature_for(SECRET, garbled),
        body=garbled,
        on_repository=seen.append,
        content_type="application/x-www-form-urlencoded",
    ) == (400, "malformed")


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        (
            {"url": "http://127.0.0.1:9/api/v3/repos/o/r", "html_url": "http://127.0.0.1:9/o/r"},
            Repository(host="github.com", owner="o", name="r"),
        ),
        (
            {"url": "https://ghe.corp/api/v3/repos/o/r", "html_url": "https://ghe.corp/o/r"},
            Repository(host="ghe.corp", owner="o", name="r"),
        ),
        (
            {"url": "https://api.github.com/repos/o/r", "html_url": "https://github.com/o/r"},
            Repository(host="github.com", owner="o", name="r"),
        ),
        (
            {"url": "https://elsewhere/api/v3/repos/o/r", "html_url": "https://elsewhere/o/r"},
            Repository(host="elsewhere", owner="o", name="r"),
        ),
    ],
    ids=["configured-api-is-github.com", "mapped-enterprise", "api.github.com-via-html", "unknown-api-via-html"],
)
def test_delivery_names_the_repository_as_origins_do(repository: dict[str, str], expected: Repository) -> None:
    from replicator.webhook import repository_of

    hosts = {"http://127.0.0.1:9/api/v3": "github.com", "https://ghe.corp/api/v3": "ghe.corp"}
    assert repository_of({"repository": repository}, hosts) == expected


NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (NESTED, "application/json"),
        (b'{"a": ' + NESTED + b"}", "application/json"),
        (b"payload=" + NESTED, "application/x-www-form-urlencoded"),
    ],
    ids=["array", "in-object", "form"],
)
def test_deeply_nested_signed_json_is_malformed_not_a_recursion_error(body: bytes, content_type: str) -> None:
    assert handle_delivery(
        secret=SECRET,
        event="pull_request",
        signature=signature_for(SECRET, body),
        body=body,
        on_repository=lambda _: None,
        content_type=content_type,
    ) == (400, "malformed")


# --- the receiver over a real socket -------------------------------------------------------------


@dataclass
class Receiver:
    server: WebhookServer
    seen: list[Repository] = field(default_factory=list)
    deliveries: list[tuple[str, str]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.port


def _receiver(**options: Any) -> Iterator[Receiver]:
    seen: list[Repository] = []
    deliveries: list[tuple[str, str]] = []
    server = WebhookServer(
        bind_address=("127.0.0.1", 0),
        path="/webhook",
        secret=SECRET,
        on_repository=seen.append,
        on_delivery=lambda e, r: deliveries.append((e, r)),
        **options,
    ).start()
    try:
        yield Receiver(server, seen, deliveries)
    finally:
        server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _receiver()


@pytest.fixture
def quick_receiver() -> Iterator[Receiver]:
    """A receiver that gives each connection half a second to send its request."""
    yield from _receiver(request_timeout=0.5)


GOOD_BODY = json.dumps({"action": "opened", "repository": {"html_url": "https://github.com/org/app"}}).encode()


def _still_answers(receiver: Receiver) -> bool:
    """A good delivery right after is accepted: the junk held no lock and broke nothing."""
    response = requests.post(
        f"http://127.0.0.1:{receiver.port}/webhook",
        data=GOOD_BODY,
        headers={"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": signature_for(SECRET, GOOD_BODY)},
        timeout=5,
    )
    return response.status_code == 202


def _status(sock: socket.socket) -> int | None:
    """The status of the first response on ``sock``; None when closed (or silent for 5 s) without one."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass  # a reset after the answer: what arrived before it still counts
    line = data.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[0].startswith(b"HTTP/") else None


def _send(port: int, head: str, body: bytes = b"") -> int | None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        return _status(sock)


def _head(*headers: str) -> str:
    return "".join(f"{h}\r\n" for h in ["POST /webhook HTTP/1.1", "Host: receiver", *headers])


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((), 411),
        (("Transfer-Encoding: chunked",), 411),
        (("Content-Length: twelve",), 400),
        (("Content-Length: -5",), 400),
        (("Content-Length: +5",), 400),
        (("Content-Length: 1_0",), 400),
        (("Content-Length: 5", "Content-Length: 6"), 400),
        (("Content-Length: 1000000000000",), 413),
        (("Content-Length: " + "9" * 5000,), 413),
        (("Content-Length: 1000000000000", "Expect: 100-continue"), 413),
    ],
    ids=[
        "missing",
        "chunked",
        "not-a-number",
        "negative",
        "signed",
        "underscore",
        "conflicting",
        "too-large",
        "too-many-digits",
        "too-large-expecting-continue",
    ],
)
def test_a_bad_content_length_gets_a_status_without_reading_the_body(
    receiver: Receiver, headers: tuple[str, ...], expected: int
) -> None:
    assert _send(receiver.port, _head("X-GitHub-Event: pull_request", *headers)) == expected
    assert _still_answers(receiver)
    assert receiver.deliveries[0][0] == "unverified"


def test_deeply_nested_signed_json_over_http_is_400(receiver: Receiver) -> None:
    signature = signature_for(SECRET, NESTED)
    head = _head(f"Content-Length: {len(NESTED)}", f"X-Hub-Signature-256: {signature}", "X-GitHub-Event: ping")
    assert _send(receiver.port, head, NESTED) == 400
    assert receiver.deliveries == [("ping", "malformed")]
    assert _still_answers(receiver)


@pytest.mark.parametrize("dribble", [False, True], ids=["stalls", "dribbles-a-byte-at-a-time"])
def test_a_client_sending_less_than_it_announced_gets_408_in_time(quick_receiver: Receiver, dribble: bool) -> None:
    with socket.create_connection(("127.0.0.1", quick_receiver.port), timeout=5) as sock:
        sock.sendall((_head("Content-Length: 100") + "\r\n").encode() + b'{"a":')
        if dribble:
            # Each byte arrives well within the per-read bound; only a total bound ends this.
            sock.settimeout(0.1)
            status: int | None = None
            deadline = time.monotonic() + 5
            while status is None and time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    sock.sendall(b" ")  # fails once the receiver closed; its answer is still there
                status = _status(sock)
            sock.settimeout(5)
        else:
            status = _status(sock)
    assert status == 408
    assert quick_receiver.deliveries == [("unverified", "timeout")]
    assert _still_answers(quick_receiver)


def test_a_client_stalling_in_its_headers_is_closed_in_time(quick_receiver: Receiver) -> None:
    with socket.create_connection(("127.0.0.1", quick_receiver.port), timeout=5) as sock:
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: rec")
        assert sock.recv(4096) == b"", "closed by the receiver, not by our 5 s timeout"
    assert _still_answers(quick_receiver)


def _wait(predicate: Callable[[], Any], *, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.01)
    return predicate()


def test_a_client_reset_is_one_structured_line_not_a_traceback(
    receiver: Receiver, capfd: pytest.CaptureFixture[str]
) -> None:
    with structlog.testing.capture_logs() as logs:
        sock = socket.create_connection(("127.0.0.1", receiver.port), timeout=5)
        sock.sendall((_head("Content-Length: 100") + "\r\n").encode() + b'{"a":')
        # SO_LINGER 0: close() sends a RST, as a client that crashed or gave up does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        went_away = _wait(lambda: [e for e in logs if e["event"] == "webhook client went away"])
        assert _still_answers(receiver)
    assert went_away and went_away[0]["log_level"] in {"debug", "info"}
    assert "exc_info" not in went_away[0]
    assert "Traceback" not in capfd.readouterr().err
    assert receiver.deliveries == [("pull_request", "accepted")]


def test_an_unexpected_error_is_500_and_logged_as_structured_error(capfd: pytest.CaptureFixture[str]) -> None:
    def broken(_: Repository) -> None:
        raise RuntimeError("enqueue failed")

    server = WebhookServer(bind_address=("127.0.0.1", 0), path="/webhook", secret=SECRET, on_repository=broken)
    server.start()
    try:
        with structlog.testing.capture_logs() as logs:
            response = requests.post(
                f"http://127.0.0.1:{server.port}/webhook",
                data=GOOD_BODY,
                headers={"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": signature_for(SECRET, GOOD_BODY)},
                timeout=5,
            )
    finally:
        server.stop()
    assert response.status_code == 500
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["webhook request failed"] and errors[0]["exc_info"]
    assert "Traceback" not in capfd.readouterr().err


def _random_event() -> str:
    return "".join(random.choices(string.ascii_letters + string.digits + "_-", k=random.randint(1, 40)))


def _series(registry: CollectorRegistry) -> list[Sample]:
    return [s for metric in registry.collect() for s in metric.samples if s.name == "deliveries_total"]


def test_random_event_headers_make_a_fixed_number_of_metric_series() -> None:
    """200 unsigned deliveries with random ``X-GitHub-Event`` values, then 50 signed ones, as ``main`` counts them."""
    registry = CollectorRegistry()
    counter = Counter("deliveries", "test", ["event", "result"], registry=registry)
    server = WebhookServer(
        bind_address=("127.0.0.1", 0),
        path="/webhook",
        secret=SECRET,
        on_repository=lambda _: None,
        on_delivery=lambda event, result: counter.labels(event=event, result=result).inc(),
    ).start()
    url = f"http://127.0.0.1:{server.port}/webhook"
    try:
        with requests.Session() as session:
            for i in range(200):
                signature = {} if i % 2 else {"X-Hub-Signature-256": "sha256=" + "0" * 64}
                headers = {"X-GitHub-Event": _random_event(), **signature}
                assert session.post(url, data=GOOD_BODY, headers=headers, timeout=5).status_code == 401
            unsigned = {s.labels["event"] for s in _series(registry)}
            for _ in range(50):
                headers = {"X-GitHub-Event": _random_event(), "X-Hub-Signature-256": signature_for(SECRET, GOOD_BODY)}
                assert session.post(url, data=GOOD_BODY, headers=headers, timeout=5).status_code == 202
    finally:
        server.stop()
    samples = _series(registry)
    assert unsigned == {"unverified"}
    assert {s.labels["event"] for s in samples} <= set(webhook.EVENT_LABELS)
    assert len(samples) <= 3
    assert sum(s.value for s in samples) == 250


def test_a_verified_pull_request_delivery_hands_over_its_pull_request_not_a_refresh() -> None:
    payload = {
        "action": "opened",
        "number": 3,
        "repository": {"full_name": "org/app", "html_url": "https://github.com/org/app"},
        "pull_request": {"number": 3, "state": "open", "head": {"sha": "a" * 40, "ref": "b"}},
    }
    body = json.dumps(payload).encode()
    refreshed: list[Repository] = []
    handed: list[tuple[Repository, dict[str, Any]]] = []
    status, result = handle_delivery(
        secret=SECRET,
        event="pull_request",
        signature=signature_for(SECRET, body),
        body=body,
        on_repository=refreshed.append,
        on_pull_request=lambda repository, pr: handed.append((repository, pr)),
    )
    assert (status, result) == (202, "accepted") and refreshed == []
    assert [(r.full_name, pr["number"]) for r, pr in handed] == [("org/app", 3)]
    forged = handle_delivery(
        secret=SECRET,
        event="pull_request",
        signature=signature_for(b"another secret", body),
        body=body,
        on_repository=refreshed.append,
        on_pull_request=lambda repository, pr: handed.append((repository, pr)),
    )
    assert forged == (401, "bad-signature") and len(handed) == 1, "an unsigned pull request is never applied"
