"""Webhooks: registered through the API, delivered from a background thread, signed like GitHub's,
checked by a tiny local receiver that verifies the HMAC with the secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from github.Repository import Repository

from emulators.github_api import GitHubApiServer

from .conftest import auth

SECRET = "s3cret"


@dataclass
class Received:
    event: str
    delivery: str
    signature: str | None
    body: bytes
    content_type: str
    payload: dict[str, Any] = field(default_factory=dict)

    def signature_ok(self, secret: str = SECRET) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return self.signature is not None and hmac.compare_digest(expected, self.signature)


class Receiver:
    def __init__(self, status: int = 202) -> None:
        self.received: list[Received] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(
                    Received(
                        self.headers["X-GitHub-Event"],
                        self.headers["X-GitHub-Delivery"],
                        self.headers.get("X-Hub-Signature-256"),
                        body,
                        self.headers["Content-Type"],
                        json.loads(body),
                    )
                )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def actions(self) -> list[tuple[str, str | None]]:
        return [(r.event, r.payload.get("action")) for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    yield rx
    rx.httpd.shutdown()
    rx.httpd.server_close()


@pytest.fixture
def hooked(gh: GitHubApiServer, repo: Repository, receiver: Receiver) -> Repository:
    repo.create_hook(
        "web", {"url": receiver.url, "secret": SECRET, "content_type": "json"}, ["pull_request"], active=True
    )
    assert gh.wait_for_webhooks()
    return repo


def test_hook_creation_sends_signed_ping(gh: GitHubApiServer, hooked: Repository, receiver: Receiver) -> None:
    (ping,) = receiver.received
    assert ping.event == "ping" and ping.signature_ok()
    assert ping.content_type == "application/json"
    assert ping.payload["hook"]["config"]["url"] == receiver.url
    assert ping.payload["repository"]["full_name"] == "alice/shop"
    assert gh.deliveries[0].status_code == 202 and gh.deliveries[0].event == "ping"


def test_pull_lifecycle_is_announced_in_order(gh: GitHubApiServer, hooked: Repository, receiver: Receiver) -> None:
    first = gh.push("alice", "shop", "feature")
    pr = hooked.create_pull(base="main", head="feature", title="t", draft=True)
    second = gh.push("alice", "shop", "feature")
    pr.add_to_labels("preview")
    pr.remove_from_labels("preview")
    pr.mark_ready_for_review()
    pr.convert_to_draft()
    pr.edit(state="closed")
    pr.edit(state="open")
    assert gh.wait_for_webhooks()
    assert receiver.actions()[1:] == [
        ("pull_request", "opened"),
        ("pull_request", "synchronize"),
        ("pull_request", "labeled"),
        ("pull_request", "unlabeled"),
        ("pull_request", "ready_for_review"),
        ("pull_request", "converted_to_draft"),
        ("pull_request", "closed"),
        ("pull_request", "reopened"),
    ]
    assert all(r.signature_ok() for r in receiver.received)
    assert len({r.delivery for r in receiver.received}) == len(receiver.received)
    sync = receiver.received[2].payload
    assert (sync["before"], sync["after"], sync["pull_request"]["head"]["sha"]) == (first, second, second)
    assert receiver.received[3].payload["label"]["name"] == "preview"
    assert receiver.received[5].payload["pull_request"]["draft"] is False


def test_merge_is_announced_as_closed_with_merged_true(
    gh: GitHubApiServer, hooked: Repository, receiver: Receiver
) -> None:
    gh.push("alice", "shop", "feature")
    hooked.create_pull(base="main", head="feature", title="t").merge()
    assert gh.wait_for_webhooks()
    closed = receiver.received[-1].payload
    assert closed["action"] == "closed" and closed["pull_request"]["merged"] is True
    assert closed["number"] == 1 and closed["sender"]["login"] == "alice"


def test_push_events_only_reach_hooks_that_asked(gh: GitHubApiServer, hooked: Repository, receiver: Receiver) -> None:
    gh.push("alice", "shop", "feature")
    assert gh.wait_for_webhooks()
    assert [r.event for r in receiver.received] == ["ping"]


def test_rest_extension_ready_for_review_emits_webhook(
    gh: GitHubApiServer, hooked: Repository, receiver: Receiver
) -> None:
    gh.push("alice", "shop", "feature")
    hooked.create_pull(base="main", head="feature", title="t", draft=True)
    answer = requests.post(f"{gh.api_url}/repos/alice/shop/pulls/1/ready_for_review", headers=auth())
    assert answer.status_code == 200 and answer.json()["draft"] is False
    answer = requests.post(f"{gh.api_url}/repos/alice/shop/pulls/1/convert_to_draft", headers=auth())
    assert answer.json()["draft"] is True
    assert gh.wait_for_webhooks()
    assert receiver.actions()[-2:] == [("pull_request", "ready_for_review"), ("pull_request", "converted_to_draft")]


def test_dropped_webhooks_are_recorded_not_sent(gh: GitHubApiServer, hooked: Repository, receiver: Receiver) -> None:
    gh.faults.drop_webhooks = True
    gh.push("alice", "shop", "feature")
    hooked.create_pull(base="main", head="feature", title="t")
    assert gh.wait_for_webhooks()
    assert [r.event for r in receiver.received] == ["ping"]
    assert gh.deliveries[-1].dropped and gh.deliveries[-1].action == "opened"


def test_unreachable_receiver_is_recorded_as_an_error(gh: GitHubApiServer, repo: Repository) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{closed.server_address[1]}/"
    closed.server_close()
    repo.create_hook("web", {"url": url, "content_type": "json"}, ["*"])
    assert gh.wait_for_webhooks()
    (delivery,) = gh.deliveries
    assert delivery.status_code is None and delivery.error
    assert "X-Hub-Signature-256" not in delivery.headers


def test_receiver_status_is_recorded(gh: GitHubApiServer, repo: Repository) -> None:
    rx = Receiver(status=401)
    try:
        repo.create_hook("web", {"url": rx.url, "secret": "wrong", "content_type": "json"}, ["pull_request"])
        assert gh.wait_for_webhooks()
        assert gh.deliveries[-1].status_code == 401
        assert not rx.received[-1].signature_ok(SECRET) and rx.received[-1].signature_ok("wrong")
    finally:
        rx.httpd.shutdown()
        rx.httpd.server_close()


def test_hook_listed_and_deleted(gh: GitHubApiServer, hooked: Repository) -> None:
    (hook,) = list(hooked.get_hooks())
    assert hook.config["secret"] == "********" and hook.events == ["pull_request"]
    hook.delete()
    assert list(hooked.get_hooks()) == []


def test_form_content_type_hooks_get_a_urlencoded_payload(gh: GitHubApiServer, repo: Repository) -> None:
    import urllib.parse

    got: list[tuple[str, bytes, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.headers["Content-Type"], body, self.headers["X-Hub-Signature-256"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        repo.create_hook("web", {"url": url, "secret": SECRET, "content_type": "form"}, ["pull_request"])
        assert gh.wait_for_webhooks()
        ((content_type, body, sig),) = got
        assert content_type == "application/x-www-form-urlencoded"
        assert json.loads(urllib.parse.parse_qs(body.decode())["payload"][0])["hook_id"] > 0
        assert sig == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    finally:
        httpd.shutdown()
        httpd.server_close()
