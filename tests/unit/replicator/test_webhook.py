"""The webhook receiver verifies signatures, accepts GitHub's real payloads, and only enqueues."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

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
    assert deliveries == [("pull_request", "bad-signature"), ("pull_request", "accepted")]


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
