"""Watch streams: chunked JSON events with resume, selectors, timeouts, bookmarks and 410 Gone.

Semantics follow kube-apiserver's watch cache: ``resourceVersion`` absent or "0" starts with
synthetic ADDED events for the current state; a concrete one replays the history after it (or
answers one ERROR event carrying a 410 Expired Status when it is older than the history).
Selectors are applied to both the old and new object, so an object that stops matching is seen
as DELETED and one that starts matching as ADDED. BOOKMARKs carry only
``metadata.resourceVersion`` and are sent only when every earlier event was delivered.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable
from typing import Any

from .errors import ApiError, bad_request
from .resources import ResourceType
from .selectors import object_matches, parse_field_selector, parse_label_selector
from .store import Event, Store, Watcher

Write = Callable[[dict[str, Any]], None]


class WatchRequest:
    def __init__(self, rt: ResourceType, namespace: str | None, query: dict[str, str], default_timeout: float) -> None:
        self.rt = rt
        self.namespace = namespace or None
        self.labels = parse_label_selector(query.get("labelSelector"))
        self.fields = parse_field_selector(query.get("fieldSelector"), rt.plural)
        rv = query.get("resourceVersion")
        # streaming lists (client-go's WatchList): current state first, then a marked BOOKMARK
        self.initial_events = (query.get("sendInitialEvents") or "").lower() == "true"
        try:
            self.since = None if rv in (None, "", "0") or self.initial_events else int(rv)
            # 0 or absent: the server's own limit, as kube-apiserver does
            self.timeout = float(query.get("timeoutSeconds") or 0) or default_timeout
        except ValueError:
            raise bad_request(f"invalid resource version or timeout: {rv!r}") from None
        self.bookmarks = (query.get("allowWatchBookmarks") or "").lower() in ("true", "1")


def _matches(req: WatchRequest, obj: dict[str, Any] | None) -> bool:
    return obj is not None and object_matches(obj, req.labels, req.fields)


def translate(req: WatchRequest, event: Event) -> tuple[str, dict[str, Any]] | None:
    """The event this watcher sees, after selectors, or None."""
    new_ok = _matches(req, event.obj)
    old_ok = _matches(req, event.old)
    if event.type == "ADDED":
        return ("ADDED", event.obj) if new_ok else None
    if event.type == "DELETED":
        return ("DELETED", event.obj) if old_ok else None
    if new_ok and old_ok:
        return ("MODIFIED", event.obj)
    if new_ok:
        return ("ADDED", event.obj)
    if old_ok:
        return ("DELETED", event.obj)
    return None


def serve(
    store: Store,
    req: WatchRequest,
    write: Write,
    out: Callable[[dict[str, Any]], dict[str, Any]],
    bookmark_interval: float,
    stopping: Callable[[], bool],
) -> str:
    """Stream events until timeout/close/drop; returns how it ended: "timeout", "close", "drop", "gone"."""
    try:
        watcher, initial = store.watch(req.rt.storage_key, req.namespace, req.since)
    except ApiError as exc:
        write({"type": "ERROR", "object": exc.status()})
        return "gone"
    last_rv = req.since if req.since is not None else store.resource_version
    if initial:
        last_rv = max(last_rv, max(e.rv for e in initial))
    deadline = time.monotonic() + req.timeout
    next_bookmark = time.monotonic() + bookmark_interval
    try:
        for event in initial:
            seen = translate(req, event)
            if seen:
                write({"type": seen[0], "object": out(seen[1])})
        if req.initial_events:
            marker = _bookmark(req, last_rv)
            marker["object"]["metadata"]["annotations"] = {"k8s.io/initial-events-end": "true"}
            write(marker)
        while True:
            now = time.monotonic()
            if now >= deadline or stopping():
                if req.bookmarks:
                    write(_bookmark(req, _safe_rv(store, watcher, last_rv)))
                return "timeout"
            wait = min(deadline, next_bookmark if req.bookmarks else deadline) - now
            try:
                item = watcher.queue.get(timeout=max(0.0, min(wait, 0.5)))
            except queue.Empty:
                if req.bookmarks and time.monotonic() >= next_bookmark:
                    write(_bookmark(req, _safe_rv(store, watcher, last_rv)))
                    next_bookmark = time.monotonic() + bookmark_interval
                continue
            if item is Watcher.CLOSE:
                return "close"
            if item is Watcher.DROP:
                return "drop"
            last_rv = max(last_rv, item.rv)
            seen = translate(req, item)
            if seen:
                write({"type": seen[0], "object": out(seen[1])})
    finally:
        store.unwatch(watcher)


def _safe_rv(store: Store, watcher: Watcher, last_rv: int) -> int:
    """The newest revision this watcher has provably seen everything up to."""
    with store.lock:
        if watcher.queue.empty():
            return max(last_rv, store.resource_version)
    return last_rv


def _bookmark(req: WatchRequest, rv: int) -> dict[str, Any]:
    return {
        "type": "BOOKMARK",
        "object": {"kind": req.rt.kind, "apiVersion": req.rt.api_version, "metadata": {"resourceVersion": str(rv)}},
    }


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"
