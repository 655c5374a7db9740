"""The object store: one lock, one global resourceVersion, a bounded event history, watchers.

Like etcd behind kube-apiserver, every write gets the next revision of ONE counter shared by all
kinds, and each write is an event kept in a bounded history (``history_size``) so that a watch can
resume from a resourceVersion; resuming from before the oldest kept event is answered with 410
Gone, exactly as after etcd compaction. Watchers receive events through their own queues so a slow
client never blocks a writer.
"""

from __future__ import annotations

import builtins
import copy
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import gone


@dataclass(frozen=True)
class Event:
    type: str  # ADDED | MODIFIED | DELETED
    rv: int
    storage_key: str
    namespace: str
    obj: dict[str, Any]  # never mutated after publication
    old: dict[str, Any] | None


class Watcher:
    """A subscription to one storage key (optionally one namespace); events arrive on ``queue``."""

    CLOSE = object()  # the store is shutting down: end the stream cleanly
    DROP = object()  # fault injection: cut the connection abruptly

    def __init__(self, storage_key: str, namespace: str | None) -> None:
        self.storage_key = storage_key
        self.namespace = namespace
        self.queue: queue.Queue[Any] = queue.Queue()

    def wants(self, event: Event) -> bool:
        return event.storage_key == self.storage_key and self.namespace in (None, event.namespace)


class Store:
    def __init__(self, history_size: int = 1000) -> None:
        self.lock = threading.RLock()
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self._rv = 0
        self._history: deque[Event] = deque(maxlen=max(1, history_size))
        self._compacted_rv = 0  # events with rv <= this are gone
        self._watchers: set[Watcher] = set()
        self._listeners: builtins.list[Callable[[Event], None]] = []

    # --- reads -------------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._rv

    def get(self, storage_key: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object itself (do not mutate; copy first)."""
        with self.lock:
            return self._objects.get(storage_key, {}).get((namespace, name))

    def list(self, storage_key: str, namespace: str | None = None) -> builtins.list[dict[str, Any]]:
        with self.lock:
            items = self._objects.get(storage_key, {})
            found = [o for (ns, _), o in items.items() if namespace is None or ns == namespace]
        return sorted(found, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def storage_keys(self) -> builtins.list[str]:
        with self.lock:
            return list(self._objects)

    # --- writes ------------------------------------------------------------------------------
    def put(self, storage_key: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace ``obj``, stamping the next resourceVersion; returns the stored object."""
        with self.lock:
            meta = obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            bucket = self._objects.setdefault(storage_key, {})
            old = bucket.get(key)
            self._rv += 1
            stored = copy.deepcopy(obj)
            stored["metadata"]["resourceVersion"] = str(self._rv)
            bucket[key] = stored
            self._publish(Event("ADDED" if old is None else "MODIFIED", self._rv, storage_key, key[0], stored, old))
            return stored

    def remove(self, storage_key: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            bucket = self._objects.get(storage_key, {})
            old = bucket.pop((namespace, name), None)
            if old is None:
                return None
            self._rv += 1
            final = copy.deepcopy(old)
            final["metadata"]["resourceVersion"] = str(self._rv)
            self._publish(Event("DELETED", self._rv, storage_key, namespace, final, old))
            return final

    def drop_storage(self, storage_key: str) -> None:
        """Forget every object of a kind without events (used when its CRD goes away)."""
        with self.lock:
            self._objects.pop(storage_key, None)

    def _publish(self, event: Event) -> None:
        if len(self._history) == self._history.maxlen:
            self._compacted_rv = self._history[0].rv
        self._history.append(event)
        for w in self._watchers:
            if w.wants(event):
                w.queue.put(event)
        for listener in self._listeners:
            listener(event)

    def compact(self) -> None:
        """Drop the whole event history, as etcd compaction does."""
        with self.lock:
            self._history.clear()
            self._compacted_rv = self._rv

    # --- watch -------------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """In-process observers (garbage collector, deployment controller); called under the lock."""
        with self.lock:
            self._listeners.append(listener)

    def watch(self, storage_key: str, namespace: str | None, since: int | None) -> tuple[Watcher, builtins.list[Event]]:
        """Subscribe; returns the watcher and the events to send first.

        ``since`` None means "current state as synthetic ADDED events, then live"; otherwise the
        events after ``since`` from the history, or 410 Gone when the history no longer has them.
        """
        with self.lock:
            if since is not None and since < self._compacted_rv:
                raise gone(f"too old resource version: {since} ({self._compacted_rv + 1})")
            w = Watcher(storage_key, namespace)
            if since is None:
                initial = [
                    Event(
                        "ADDED",
                        int(o["metadata"]["resourceVersion"]),
                        storage_key,
                        o["metadata"].get("namespace", ""),
                        o,
                        None,
                    )
                    for o in self.list(storage_key, namespace)
                ]
            else:
                initial = [e for e in self._history if e.rv > since and w.wants(e)]
            self._watchers.add(w)
            return w, initial

    def unwatch(self, watcher: Watcher) -> None:
        with self.lock:
            self._watchers.discard(watcher)

    def close_watchers(self, how: object, storage_key: str | None = None) -> None:
        """End open watches (of one kind, or all): CLOSE ends them cleanly, DROP cuts them."""
        with self.lock:
            for w in list(self._watchers):
                if storage_key in (None, w.storage_key):
                    w.queue.put(how)
