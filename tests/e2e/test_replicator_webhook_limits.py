"""Junk sent to the replicator process's webhook port costs a bounded answer and nothing more.

The replicator runs as a real process with its receiver on. Two hundred unsigned requests with
random ``X-GitHub-Event`` values leave ``replicator_webhook_deliveries_total`` with a handful of
series, all ``event="unverified"``, instead of one per request. Bad ``Content-Length`` values get
400/411/413 at once, a client that resets its connection is one JSON log line rather than a
traceback, and a signed delivery right after is still answered 202.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import socket
import string
import struct
import urllib.request

import pytest
import requests
from e2e.replicator_support import Replicator, until

from world import World, free_port

pytestmark = pytest.mark.e2e

SECRET = "webhook-secret"
DELIVERIES = "replicator_webhook_deliveries_total"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _delivery_series(replicator: Replicator) -> dict[str, float]:
    """Every ``replicator_webhook_deliveries_total`` sample on ``/metrics``, by its label text."""
    with urllib.request.urlopen(f"http://127.0.0.1:{replicator.metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if line.startswith(DELIVERIES + "{"))
    return {key.removeprefix(DELIVERIES): float(value) for key, value in samples}


def _status(port: int, head: bytes) -> int | None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        data = b""
        while b"\r\n" not in data and (chunk := sock.recv(4096)):
            data += chunk
    line = data.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 else None


def _random_event() -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=random.randint(1, 40)))


def test_junk_requests_get_bounded_answers_fixed_series_and_json_logs(world: World) -> None:
    port = free_port()
    replicator = Replicator(
        world,
        poll_interval=120.0,
        extra=["--webhook-bind-address", f"127.0.0.1:{port}"],
        env={"GITHUB_WEBHOOK_SECRET": SECRET},
    )
    until(lambda: _listening(port), message="the webhook receiver listens", world=world)
    url = f"http://127.0.0.1:{port}/webhook"
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()

    with requests.Session() as session:
        for i in range(200):
            signature = {} if i % 2 else {"X-Hub-Signature-256": "sha256=" + "0" * 64}
            headers = {"X-GitHub-Event": _random_event(), **signature}
            assert session.post(url, data=body, headers=headers, timeout=5).status_code == 401
    series = _delivery_series(replicator)
    assert set(series) == {
        '{event="unverified",result="missing-signature"}',
        '{event="unverified",result="bad-signature"}',
    }
    assert sum(series.values()) == 200

    head = "POST /webhook HTTP/1.1\r\nHost: replicator\r\nX-GitHub-Event: {event}\r\n{length}\r\n"
    for length, expected in [("", 411), ("Content-Length: abc\r\n", 400), ("Content-Length: 99999999999\r\n", 413)]:
        assert _status(port, head.format(event=_random_event(), length=length).encode()) == expected

    # A client that gives up halfway: SO_LINGER 0 makes close() a reset.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.format(event="ping", length="Content-Length: 100\r\n").encode() + b'{"zen":')
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    until(
        lambda: "webhook client went away" in replicator.process.logs(),
        message="the reset is logged",
        world=world,
    )

    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    signed = {"X-GitHub-Event": "ping", "X-Hub-Signature-256": signature}
    ping = requests.post(url, data=body, headers=signed, timeout=5)
    assert ping.status_code == 202
    series = _delivery_series(replicator)
    assert series['{event="ping",result="ping"}'] == 1
    assert {key.split(",")[0] for key in series} == {'{event="unverified"', '{event="ping"'}
    assert len(series) == 6, series

    assert replicator.stop() == 0
    lines = [line for line in replicator.process.log_path.read_text().splitlines() if line.strip()]
    not_json = [line for line in lines if not line.startswith("{")]
    assert not_json == [], "every log line is a JSON object, no tracebacks"
    went_away = [json.loads(line) for line in lines if "webhook client went away" in line]
    assert [entry["level"] for entry in went_away] == ["info"]
