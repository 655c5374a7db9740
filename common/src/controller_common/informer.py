"""A list-then-watch cache of one resource, with change notifications, like client-go's informer.

Why this exists: reconcilers must read the world cheaply and often, and must hear about every
change — including deletions that happened while a watch was down. This keeps an in-memory
copy of the objects (plain dicts keyed ``namespace/name``) current and tells handlers what
changed.

Guarantees:

- ``list`` first, then ``watch`` from the list's resourceVersion (with bookmarks, so a quiet
  resource does not fall behind compaction); a watch that ends normally is resumed from the last
  seen resourceVersion.
- On 410 Gone the informer relists and emits synthetic add / update / delete notifications for
  the difference, so handlers never miss a deletion.
- Any other failure is counted (``<prefix>_informer_errors_total{resource}``), followed by a
  bounded, jittered exponential backoff, and then a re-watch (or a relist, if listing failed).
- Every ``resync_seconds`` the update handler is called for every cached object (old == new),
  so a key whose reconcile was dropped is looked at again.
- Handlers are called one at a time, never concurrently, and an exception in a handler is logged
  and does not stop the informer. **Handlers should only enqueue keys**: they run on the
  informer's thread.
- Cached objects are frozen once, when they arrive (:class:`~controller_common.objects.FrozenDict`),
  and :meth:`Informer.get`, :meth:`Informer.list` and the index reads hand out the cache's own
  objects without copying: reads are free, and a write into one raises ``TypeError`` instead of
  corrupting the cache. Change a copy (``objects.deep_copy``); reconcilers copy only what they write.
- ``metadata.managedFields`` is not kept: no reconciler reads it, it is often the larger part of
  an object, and an update that omits it leaves the server's record unchanged.
"""

from __future__ import annotations

import builtins
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from controller_common import errors, objects
from controller_common import metrics as metrics_mod
from controller_common.kube import KubeClient, Resource, Watch
from controller_common.workqueue import exponential_backoff

log = structlog.get_logger(__name__)

Obj = dict[str, Any]
AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]
ChangeHandler = Callable[[str, Obj], None]
IndexFunc = Callable[[Obj], Iterable[str]]

NAMESPACE_INDEX = "namespace"
SHORT_WATCH_SECONDS = 1.0


def _cached_form(obj: Obj) -> Obj:
    """What the cache keeps of an object: frozen, without ``managedFields``."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata and not isinstance(metadata, objects.FrozenDict):
        obj = {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}
    return objects.freeze(obj)  # type: ignore[no-any-return]


def _namespace_index(obj: Obj) -> list[str]:
    ns = objects.namespace(obj)
    return [ns] if ns else []


class Informer:
    """Cache and notifications for ``resource`` (optionally one namespace / label selector)."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        resync_seconds: float = 300,
        name: str,
        watch_timeout_seconds: int = 300,
        backoff_base: float = 0.2,
        backoff_max: float = 30.0,
        metrics: metrics_mod.Metrics | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.resync_seconds = resync_seconds
        self.name = name
        self.watch_timeout_seconds = watch_timeout_seconds
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        label = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
        m = metrics if metrics is not None else metrics_mod.current()
        self._errors = m.informer_errors_total.labels(resource=label)
        self._relists = m.informer_relists_total.labels(resource=label)
        self._log = log.bind(informer=name, resource=label)

        self._lock = threading.RLock()
        self._store: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {NAMESPACE_INDEX: _namespace_index}
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        self._handlers: list[tuple[AddHandler | None, UpdateHandler | None, DeleteHandler | None]] = []
        self._dispatch_lock = threading.Lock()

        self._synced = threading.Event()
        self._stop = threading.Event()
        self._watch: Watch | None = None
        self._threads: list[threading.Thread] = []
        self.resource_version = ""

    # --- handlers and indexes ---------------------------------------------------------------

    def add_handler(
        self,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
    ) -> None:
        """Register callbacks; register before :meth:`start` to see the initial adds."""
        self._handlers.append((on_add, on_update, on_delete))

    def on_change(self, handler: ChangeHandler) -> None:
        """Register one callback ``handler(event_type, obj)`` with ``ADDED``/``MODIFIED``/``DELETED``
        (a resync arrives as ``MODIFIED``). Typical use: ``lambda _t, o: queue.add(object_key(o))``.
        """
        self.add_handler(
            lambda obj: handler("ADDED", obj),
            lambda _old, new: handler("MODIFIED", new),
            lambda obj: handler("DELETED", obj),
        )

    def add_index(self, name: str, index: IndexFunc) -> None:
        """Index cached objects by ``index(obj)`` values; query with :meth:`by_index`."""
        with self._lock:
            self._indexers[name] = index
            self._indices[name] = {}
            for key, obj in self._store.items():
                for value in index(obj):
                    self._indices[name].setdefault(value, set()).add(key)

    # --- reading the cache ------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        with self._lock:
            return self._store.get(key)

    def list(self) -> builtins.list[Obj]:
        with self._lock:
            return builtins.list(self._store.values())

    def keys(self) -> builtins.list[str]:
        with self._lock:
            return sorted(self._store)

    def by_index(self, index_name: str, value: str) -> builtins.list[Obj]:
        with self._lock:
            keys = self._indices[index_name].get(value, set())
            return [self._store[k] for k in sorted(keys)]

    def list_namespace(self, namespace: str) -> builtins.list[Obj]:
        return self.by_index(NAMESPACE_INDEX, namespace)

    def has_synced(self) -> bool:
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> Informer:
        if self._threads:
            return self
        self._threads = [threading.Thread(target=self._run, name=f"informer-{self.name}", daemon=True)]
        if self.resync_seconds and self.resync_seconds > 0:
            self._threads.append(
                threading.Thread(target=self._run_resync, name=f"informer-{self.name}-resync", daemon=True)
            )
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        watch = self._watch
        if watch is not None:
            watch.stop()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    # --- the list/watch loop ----------------------------------------------------------------

    def _run(self) -> None:
        need_list = True
        failures = 0
        while not self._stop.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                    failures = 0
                if self._watch_once():
                    failures = 0
                else:
                    # A watch the server ended at once without a single event (a proxy closing
                    # idle streams, a server shedding load): back off instead of spinning.
                    failures += 1
                    self._stop.wait(self._backoff(failures))
            except errors.Gone:
                self._log.info("informer watch expired, relisting", resource_version=self.resource_version)
                need_list = True
            except Exception as exc:
                if self._stop.is_set():
                    break
                failures += 1
                self._errors.inc()
                delay = self._backoff(failures)
                self._log.warning(
                    "informer error", error=str(exc), error_type=type(exc).__name__, retry_in=round(delay, 3)
                )
                self._stop.wait(delay)
        self._log.debug("informer stopped")

    def _backoff(self, failures: int) -> float:
        delay = exponential_backoff(failures, initial=self.backoff_base, cap=self.backoff_max)
        return delay * (0.5 + random.random() / 2)  # jitter: informers must not retry in lockstep

    def _relist(self) -> None:
        items, resource_version = self.client.list(self.resource, self.namespace, label_selector=self.label_selector)
        self._relists.inc()
        fresh = {objects.object_key(item): item for item in items}
        with self._lock:
            old_store = self._store
            self._store = {}
            for index in self._indices.values():
                index.clear()
            for key, obj in fresh.items():
                fresh[key] = self._put(key, obj)
            added = [obj for key, obj in fresh.items() if key not in old_store]
            updated = [
                (old_store[key], obj)
                for key, obj in fresh.items()
                if key in old_store and objects.resource_version(old_store[key]) != objects.resource_version(obj)
            ]
            deleted = [obj for key, obj in old_store.items() if key not in fresh]
            self.resource_version = resource_version
        for obj in added:
            self._dispatch("add", None, obj)
        for old, new in updated:
            self._dispatch("update", old, new)
        for obj in deleted:
            self._dispatch("delete", None, obj)
        self._synced.set()
        self._log.debug("informer listed", count=len(fresh), resource_version=resource_version)

    def _watch_once(self) -> bool:
        """Follow one watch to its end; ``False`` if it ended at once without delivering anything."""
        started = time.monotonic()
        delivered = 0
        watch = self.client.watch(
            self.resource,
            self.namespace,
            resource_version=self.resource_version,
            timeout_seconds=self.watch_timeout_seconds,
            label_selector=self.label_selector,
        )
        self._watch = watch
        try:
            if self._stop.is_set():
                return True
            for event_type, obj in watch:
                if self._stop.is_set():
                    return True
                delivered += 1
                self._apply(event_type, obj)
            return delivered > 0 or time.monotonic() - started >= SHORT_WATCH_SECONDS
        finally:
            self._watch = None
            watch.close()

    def _apply(self, event_type: str, obj: Obj) -> None:
        rv = objects.resource_version(obj)
        if event_type == "BOOKMARK":
            if rv:
                self.resource_version = rv
            return
        key = objects.object_key(obj)
        with self._lock:
            old = self._store.get(key)
            if event_type in ("ADDED", "MODIFIED"):
                self._remove(key)
                obj = self._put(key, obj)
            elif event_type == "DELETED":
                self._remove(key)
            else:
                self._log.warning("informer ignored unknown event", event_type=event_type)
                return
            if rv:
                self.resource_version = rv
        if event_type == "DELETED":
            self._dispatch("delete", None, obj)
        elif old is None:
            self._dispatch("add", None, obj)
        else:
            self._dispatch("update", old, obj)

    def _put(self, key: str, obj: Obj) -> Obj:
        obj = _cached_form(obj)
        self._store[key] = obj
        for name, index in self._indexers.items():
            for value in index(obj):
                self._indices[name].setdefault(value, set()).add(key)
        return obj

    def _remove(self, key: str) -> None:
        obj = self._store.pop(key, None)
        if obj is None:
            return
        for name, index in self._indexers.items():
            for value in index(obj):
                keys = self._indices[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._indices[name][value]

    # --- notifications ----------------------------------------------------------------------

    def _run_resync(self) -> None:
        while not self._stop.wait(self.resync_seconds):
            if not self._synced.is_set():
                continue
            with self._lock:
                snapshot = builtins.list(self._store.values())
            for obj in snapshot:
                if self._stop.is_set():
                    return
                self._dispatch("update", obj, obj)

    def _dispatch(self, kind: str, old: Obj | None, obj: Obj) -> None:
        with self._dispatch_lock:
            for on_add, on_update, on_delete in self._handlers:
                try:
                    if kind == "add" and on_add is not None:
                        on_add(obj)
                    elif kind == "update" and on_update is not None:
                        on_update(old if old is not None else obj, obj)
                    elif kind == "delete" and on_delete is not None:
                        on_delete(obj)
                except Exception:
                    self._log.exception("informer handler failed", notification=kind, key=objects.object_key(obj))
