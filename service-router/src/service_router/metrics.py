"""The service-router's domain metrics, on the process registry of :mod:`controller_common.metrics`.

Library metrics (reconciles, work queue, informers, events) come from ``controller_common``;
these add what an Istio operator asks about: how many PR routes stand, and how often we write.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from controller_common.metrics import Metrics

PREFIX = "service_router"


@dataclass(frozen=True)
class RouterMetrics:
    library: Metrics
    managed_routes: Gauge
    virtual_service_writes: Counter
    conflicts_retried: Counter

    @classmethod
    def create(cls, library: Metrics) -> RouterMetrics:
        r = library.registry
        return cls(
            library=library,
            managed_routes=Gauge(
                f"{PREFIX}_managed_routes",
                "PR routes the router maintains, per origin Service.",
                ["namespace", "origin"],
                registry=r,
            ),
            virtual_service_writes=Counter(
                f"{PREFIX}_virtual_service_writes_total",
                "VirtualService writes, per action (create, update, delete).",
                ["action"],
                registry=r,
            ),
            conflicts_retried=Counter(
                f"{PREFIX}_conflicts_total",
                "Writes answered 409 Conflict (another writer changed the object); retried from a fresh read.",
                registry=r,
            ),
        )
