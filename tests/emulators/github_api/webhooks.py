"""Webhook deliveries: payloads shaped like GitHub's, signed, POSTed from a background thread.

An ``Event`` from the store is turned into a payload immediately (a snapshot of the state at the
moment of the change, as GitHub's are) and queued per matching hook; one thread delivers in
order with ``X-GitHub-Event``, ``X-GitHub-Delivery``, ``X-GitHub-Hook-ID`` and, when the hook has
a secret, ``X-Hub-Signature-256``. GitHub never redelivers on failure, and neither do we: every
attempt is recorded in ``deliveries`` with its status code or error. ``faults.drop_webhooks``
records a delivery as dropped without sending it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import serializers as s
from . import serializers_git as g
from .faults import Faults
from .model import Hook, Repo
from .store import Event

ZEN = "Keep it logically awesome."


@dataclass
class Delivery:
    """One attempt; ``status_code`` is None when the receiver was unreachable or it was dropped."""

    id: str
    event: str
    action: str | None
    hook_id: int
    url: str
    payload: dict[str, Any]
    headers: dict[str, str]
    status_code: int | None = None
    error: str | None = None
    dropped: bool = False
    delivered_at: float = field(default_factory=time.time)


def payload(event: Event, urls: s.Urls) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if event.action is not None:
        out["action"] = event.action
    if event.pull is not None:
        out["number"] = event.pull.number
        out["pull_request"] = s.pull(event.pull, event.repo, urls)
    for key, value in event.extra.items():
        out[key] = s.label(value, event.repo, urls) if key == "label" else value
    out["repository"] = s.repo(event.repo, urls)
    if event.name == "push":
        out["pusher"] = {"name": event.sender.login, "email": None}
    out["sender"] = s.user(event.sender, urls)
    return out


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookDispatcher:
    def __init__(self, faults: Faults, *, timeout: float = 5.0) -> None:
        self.faults = faults
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        self._queue: queue.Queue[tuple[Hook, Delivery, bytes] | None] = queue.Queue()
        self._cond = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="github-emulator-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=self.timeout + 1)
            self._thread = None

    def enqueue(self, event: Event, urls: s.Urls) -> None:
        hooks = [h for h in event.repo.hooks.values() if h.wants(event.name)]
        if not hooks:
            return
        body_obj = payload(event, urls)
        for hook in hooks:
            self.send(hook, event.name, event.action, body_obj)

    def ping(self, hook: Hook, repo: Repo, urls: s.Urls, sender: Any) -> None:
        body_obj = {
            "zen": ZEN,
            "hook_id": hook.id,
            "hook": g.hook(hook, repo, urls),
            "repository": s.repo(repo, urls),
            "sender": s.user(sender, urls),
        }
        self.send(hook, "ping", None, body_obj)

    def send(self, hook: Hook, event: str, action: str | None, body_obj: dict[str, Any]) -> None:
        """Queue one delivery; ``content_type: form`` hooks get ``payload=<json>`` urlencoded, as on GitHub."""
        text = json.dumps(body_obj)
        if hook.content_type == "form":
            body = urllib.parse.urlencode({"payload": text}).encode()
            content_type = "application/x-www-form-urlencoded"
        else:
            body, content_type = text.encode(), "application/json"
        headers = {
            "Content-Type": content_type,
            "User-Agent": "GitHub-Hookshot/emulator",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-GitHub-Hook-ID": str(hook.id),
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": str(body_obj.get("repository", {}).get("id", "")),
        }
        if hook.secret:
            headers["X-Hub-Signature-256"] = signature(hook.secret, body)
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(hook.secret.encode(), body, hashlib.sha1).hexdigest()
        delivery = Delivery(
            id=headers["X-GitHub-Delivery"],
            event=event,
            action=action,
            hook_id=hook.id,
            url=hook.url,
            payload=body_obj,
            headers=headers,
        )
        with self._cond:
            self._pending += 1
        self._queue.put((hook, delivery, body))

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queued delivery was attempted; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout=timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            hook, delivery, body = item
            try:
                self._deliver(hook, delivery, body)
            finally:
                with self._cond:
                    self.deliveries.append(delivery)
                    self._pending -= 1
                    self._cond.notify_all()

    def _deliver(self, hook: Hook, delivery: Delivery, body: bytes) -> None:
        if self.faults.drop_webhooks:
            delivery.dropped = True
            delivery.error = "dropped by fault injection"
            return
        request = urllib.request.Request(hook.url, data=body, headers=delivery.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                delivery.status_code = response.status
        except urllib.error.HTTPError as err:
            delivery.status_code = err.code
        except (OSError, ValueError) as err:
            delivery.error = f"{type(err).__name__}: {err}"
        delivery.delivered_at = time.time()
