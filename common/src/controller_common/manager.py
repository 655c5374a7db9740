"""The process shell both controllers run in, modelled on controller-runtime's manager.

Order of life: serve ``/metrics`` and ``/healthz`` at once (every replica, leader or not); start
the informers; report ``/readyz`` only once every cache has synced; then run the controllers and
other runnables (pollers, webhook receivers). SIGTERM or SIGINT stops intake, lets each worker
finish the item it holds and exits 0; a second signal exits at once. A runnable that dies
unexpectedly stops the process with a non-zero code, so Kubernetes restarts the pod instead of
leaving a half-working controller behind.

Sharded (``--shard-count`` > 1), the manager's work queues (:meth:`Manager.work_queue`) accept only
the keys of this shard, and ``<prefix>_shard_info{index,count}`` says which shard this process is.
"""

from __future__ import annotations

import builtins
import importlib.metadata
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Any

import structlog

from controller_common import health, objects
from controller_common.engine import Controller
from controller_common.flags import LeaderElectionSettings, ProcessSettings
from controller_common.informer import Informer
from controller_common.kube import KubeClient, Resource
from controller_common.leader import LeaderElector
from controller_common.metrics import Metrics
from controller_common.sharding import UNSHARDED, Shard, ShardedWorkQueue, register_shard_info
from controller_common.workqueue import WorkQueue

log = structlog.get_logger(__name__)

Runnable = Callable[[threading.Event], None]
# Longest a SIGTERM may wait before its handler runs in the main thread (see Manager.run).
SIGNAL_CHECK_SECONDS = 0.5


class InformerGroup:
    """One informer per watched namespace (or one for the cluster), read as a single cache."""

    def __init__(self, informers: Sequence[Informer]) -> None:
        self._informers = list(informers)

    def get(self, key: str) -> dict[str, Any] | None:
        for informer in self._informers:
            found = informer.get(key)
            if found is not None:
                return found
        return None

    def list(self) -> builtins.list[dict[str, Any]]:
        return [obj for informer in self._informers for obj in informer.list()]

    def list_namespace(self, namespace: str) -> builtins.list[dict[str, Any]]:
        return [obj for informer in self._informers for obj in informer.list_namespace(namespace)]

    def add_index(self, name: str, index: Callable[[dict[str, Any]], Iterable[str]]) -> None:
        """Maintain ``index`` (object -> values) in every informer; read it with :meth:`by_index`."""
        for informer in self._informers:
            informer.add_index(name, index)

    def by_index(self, name: str, value: str) -> builtins.list[dict[str, Any]]:
        """The cached objects whose ``name`` index holds ``value``: a lookup, not a scan."""
        return [obj for informer in self._informers for obj in informer.by_index(name, value)]

    def on_change(self, handler: Callable[[str, dict[str, Any]], None]) -> None:
        for informer in self._informers:
            informer.on_change(handler)

    def add_handler(
        self,
        on_add: Callable[[dict[str, Any]], None] | None = None,
        on_update: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
        on_delete: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """Separate callbacks per notification, in every informer (see ``Informer.add_handler``)."""
        for informer in self._informers:
            informer.add_handler(on_add=on_add, on_update=on_update, on_delete=on_delete)

    def on_update(self, handler: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
        """``handler(old, new)`` for changes only: for keys that depend on what an object *was*."""
        for informer in self._informers:
            informer.add_handler(on_update=handler)

    def has_synced(self) -> bool:
        return all(informer.has_synced() for informer in self._informers)

    def start(self) -> None:
        for informer in self._informers:
            informer.start()

    def stop(self) -> None:
        for informer in self._informers:
            informer.stop()


class Manager:
    def __init__(
        self,
        *,
        name: str,
        client: KubeClient,
        metrics: Metrics,
        namespaces: Sequence[str] = (),
        resync_seconds: float = 600.0,
        metrics_bind_address: str = ":8080",
        health_probe_bind_address: str = ":8081",
        leader_election: LeaderElectionSettings | None = None,
        cache_sync_timeout_seconds: float = 120.0,
        shard: Shard = UNSHARDED,
    ) -> None:
        self.name = name
        self.client = client
        self.client.identify(name, _version_of(name))
        self.metrics = metrics
        self.namespaces = tuple(namespaces)
        self.resync_seconds = resync_seconds
        self.metrics_bind_address = metrics_bind_address
        self.health_probe_bind_address = health_probe_bind_address
        self.cache_sync_timeout_seconds = cache_sync_timeout_seconds
        self.shard = shard
        register_shard_info(metrics.registry, metrics.prefix, shard)
        self.elector = (
            LeaderElector(
                client,
                name=leader_election.lease_name,
                namespace=leader_election.namespace,
                lease_duration=leader_election.lease_duration_seconds,
                renew_deadline=leader_election.renew_deadline_seconds,
                retry_period=leader_election.retry_period_seconds,
                # Released only after the workers have finished (see _shutdown), so a successor
                # never overlaps with our in-flight reconcile.
                release_on_cancel=False,
                metrics=metrics,
            )
            if leader_election is not None
            else None
        )
        self.stop_event = threading.Event()
        self._groups: list[InformerGroup] = []
        self._controllers: list[Controller] = []
        self._runnables: list[tuple[str, Runnable]] = []
        self._ready = threading.Event()
        self._failed: list[str] = []
        self._servers: list[Any] = []

    @classmethod
    def from_settings(cls, *, name: str, client: KubeClient, metrics: Metrics, process: ProcessSettings) -> Manager:
        return cls(
            name=name,
            client=client,
            metrics=metrics,
            namespaces=process.namespaces,
            resync_seconds=process.resync_period_seconds,
            metrics_bind_address=process.metrics_bind_address,
            health_probe_bind_address=process.health_probe_bind_address,
            leader_election=process.leader_election,
            cache_sync_timeout_seconds=process.cache_sync_timeout_seconds,
            shard=process.shard,
        )

    def informer(self, resource: Resource, *, label_selector: str | None = None) -> InformerGroup:
        namespaces: Sequence[str | None] = self.namespaces or (None,)
        group = InformerGroup(
            [
                Informer(
                    self.client,
                    resource,
                    namespace=namespace,
                    label_selector=label_selector,
                    resync_seconds=self.resync_seconds,
                    name=f"{resource.plural}@{namespace or '*'}",
                    metrics=self.metrics,
                )
                for namespace in namespaces
            ]
        )
        self._groups.append(group)
        return group

    def work_queue(self, name: str, *, owner: Callable[[str], str] | None = None) -> WorkQueue:
        """A work queue that accepts only the keys this shard owns (every key when unsharded).

        ``owner(key)`` is the name ownership is decided by: by default the namespace of a
        ``namespace/name`` key. Sharding is decided here once, for every source of keys.
        """
        shard = self.shard
        if not shard.sharded:
            return WorkQueue(name, metrics=self.metrics)
        if owner is None:
            return ShardedWorkQueue(name, shard.owns_key, metrics=self.metrics)
        owner_of = owner
        return ShardedWorkQueue(name, lambda key: shard.owns(owner_of(key)), metrics=self.metrics)

    def add_controller(self, controller: Controller) -> None:
        self._controllers.append(controller)

    def add_runnable(self, name: str, runnable: Runnable) -> None:
        """Run ``runnable(stop_event)`` in its own thread once caches have synced."""
        self._runnables.append((name, runnable))

    def is_ready(self) -> bool:
        return self._ready.is_set()

    def request_stop(self) -> None:
        self.stop_event.set()

    def run(self) -> int:
        """Block until stopped; returns the process exit code."""
        self._install_signal_handlers()
        self._serve_endpoints()
        for group in self._groups:
            group.start()
        log.info("waiting for caches to sync", informers=len(self._groups))
        deadline = time.monotonic() + self.cache_sync_timeout_seconds
        while not self.stop_event.is_set() and not all(g.has_synced() for g in self._groups):
            if time.monotonic() > deadline:
                log.error("caches did not sync in time", timeout_seconds=self.cache_sync_timeout_seconds)
                self._failed.append("cache-sync")
                return self._shutdown([])
            self.stop_event.wait(0.05)
        if self.stop_event.is_set():
            return self._shutdown([])
        # Ready means "can serve": caches are warm. A standby replica is ready too (like controller-runtime).
        self._ready.set()
        if self.elector is not None and not self.elector.acquire(self.stop_event):
            return self._shutdown([])
        log.info(
            "caches synced; starting workers",
            controllers=[c.name for c in self._controllers],
            shard=f"{self.shard.index}/{self.shard.count}",
        )
        threads = [self._thread(c.name, c.run) for c in self._controllers]
        threads += [self._thread(name, fn) for name, fn in self._runnables]
        if self.elector is not None:
            self._thread("leader-election", self._keep_leadership)
        # Wake now and then rather than block for good: CPython runs signal handlers only in the
        # main thread between bytecodes, and a SIGTERM that lands while this thread is entering an
        # untimed lock wait is otherwise never handled (seen in the e2e suite: no "signal
        # received", SIGKILL after the grace period, Lease and webhook-receiver label left behind).
        while not self.stop_event.wait(SIGNAL_CHECK_SECONDS):
            pass
        return self._shutdown(threads)

    def _keep_leadership(self, stop: threading.Event) -> None:
        assert self.elector is not None
        if not self.elector.renew_until_lost(stop):
            # Losing the lease while workers run means another replica may now write too:
            # exit non-zero at once so Kubernetes restarts us as a standby.
            raise RuntimeError("leadership lost")

    def _thread(self, name: str, fn: Runnable) -> threading.Thread:
        def target() -> None:
            try:
                fn(self.stop_event)
            except Exception:
                log.exception("runnable crashed; stopping the process", runnable=name)
                self._failed.append(name)
                self.stop_event.set()

        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    def _shutdown(self, threads: Sequence[threading.Thread]) -> int:
        log.info("stopping")
        self._ready.clear()
        for thread in threads:
            thread.join(timeout=30)
        if self.elector is not None and not self._failed:
            self.elector.release()  # a no-op unless we still hold the Lease
        for group in self._groups:
            group.stop()
        health.shutdown(self._servers)
        code = 1 if self._failed else 0
        log.info("stopped", exit_code=code)
        return code

    def _serve_endpoints(self) -> None:
        self._servers = health.serve_endpoints(
            metrics_bind_address=self.metrics_bind_address,
            health_probe_bind_address=self.health_probe_bind_address,
            registry=self.metrics.registry,
            ready=self.is_ready,
        )

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            if self.stop_event.is_set():
                log.warning("second signal: exiting now", signal=signum)
                os._exit(1)
            log.info("signal received: finishing in-flight work", signal=signum)
            self.stop_event.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)


def _version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def enqueue_key(queue_add: Callable[[str], None]) -> Callable[[str, dict[str, Any]], None]:
    """An informer handler that enqueues the object's own ``namespace/name``."""
    return lambda _event, obj: queue_add(objects.object_key(obj))
