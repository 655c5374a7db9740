"""Prometheus metrics shared by both controllers, defined in one place.

Why this exists: the work queue, informers, engine and event recorder all emit metrics, and each
process must expose them under its own prefix (``replicator_…``, ``service_router_…``) from a
dedicated :class:`~prometheus_client.CollectorRegistry` (never the global default registry, so
tests and two instances in one interpreter cannot collide).

Guarantees: names follow controller-runtime (``<prefix>_reconcile_total{controller,result}``,
``<prefix>_reconcile_time_seconds{controller}``, ``<prefix>_workqueue_depth{name}``, …);
:func:`configure` installs the process-wide instance that components use unless handed one
explicitly; controllers register their domain metrics on :attr:`Metrics.registry`.
"""

from __future__ import annotations

import re
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_PREFIX = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

# Reconciles are API round trips: milliseconds to tens of seconds.
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """All library metrics of one process, under ``prefix``, in their own registry."""

    def __init__(self, prefix: str, registry: CollectorRegistry | None = None) -> None:
        if not _PREFIX.match(prefix):
            raise ValueError(f"invalid metric prefix {prefix!r} (use underscores, e.g. service_router)")
        self.prefix = prefix
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        p, r = prefix, self.registry
        self.reconcile_total = Counter(
            f"{p}_reconcile_total",
            "Reconciles per controller and result (success, error, requeue, requeue_after).",
            ["controller", "result"],
            registry=r,
        )
        self.reconcile_errors_total = Counter(
            f"{p}_reconcile_errors_total",
            "Reconciles that ended in an error, per controller.",
            ["controller"],
            registry=r,
        )
        self.reconcile_time_seconds = Histogram(
            f"{p}_reconcile_time_seconds",
            "Time per reconcile, per controller.",
            ["controller"],
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self.workqueue_depth = Gauge(f"{p}_workqueue_depth", "Keys waiting in the work queue.", ["name"], registry=r)
        self.workqueue_adds_total = Counter(
            f"{p}_workqueue_adds_total", "Keys added to the work queue.", ["name"], registry=r
        )
        self.workqueue_retries_total = Counter(
            f"{p}_workqueue_retries_total", "Rate-limited re-adds to the work queue.", ["name"], registry=r
        )
        self.informer_errors_total = Counter(
            f"{p}_informer_errors_total",
            "List/watch failures per informer resource (each followed by a backoff).",
            ["resource"],
            registry=r,
        )
        self.informer_relists_total = Counter(
            f"{p}_informer_relists_total",
            "Full relists per informer resource (initial list, 410 Gone, recovery).",
            ["resource"],
            registry=r,
        )
        self.events_total = Counter(
            f"{p}_events_total",
            "Kubernetes Events the controller tried to record, per outcome (created, deduplicated, failed).",
            ["result"],
            registry=r,
        )
        self.leader_election_status = Gauge(
            f"{p}_leader_election_master_status",
            "1 while this replica holds the named Lease, else 0 (client-go's metric).",
            ["name"],
            registry=r,
        )
        self._build_info: Gauge | None = None
        self._lock = threading.Lock()

    def build_info(self, version: str, **labels: str) -> None:
        """Set ``<prefix>_build_info{version=...} 1`` (extra constant labels allowed once)."""
        with self._lock:
            if self._build_info is None:
                self._build_info = Gauge(
                    f"{self.prefix}_build_info",
                    "Build information; the value is always 1.",
                    ["version", *sorted(labels)],
                    registry=self.registry,
                )
            self._build_info.labels(version=version, **labels).set(1)


_current: Metrics | None = None
_current_lock = threading.Lock()


def configure(prefix: str) -> Metrics:
    """Install the process-wide :class:`Metrics` (call once in ``main()``; idempotent per prefix)."""
    global _current
    with _current_lock:
        if _current is None or _current.prefix != prefix:
            _current = Metrics(prefix)
        return _current


def registry() -> CollectorRegistry:
    """The process-wide registry (what ``/metrics`` serves)."""
    return current().registry


def current() -> Metrics:
    """The process-wide metrics; a ``controller`` prefix if :func:`configure` was never called."""
    global _current
    with _current_lock:
        if _current is None:
            _current = Metrics("controller")
        return _current
