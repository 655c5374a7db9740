"""The service-router's domain metrics, on the process registry of :mod:`controller_common.metrics`.

Library metrics (reconciles and their duration, work queue, informers, events) come from
``controller_common``; these add what an Istio operator asks about: how many PR routes stand in
each VirtualService, how often we write, how often another writer raced or undid us, and how
often bad input (an origin that does not exist) kept us from routing.
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
    gateway_route_writes: Counter
    conflicts_retried: Counter
    reverts_detected: Counter
    revert_backoffs: Counter
    skipped: Counter

    @classmethod
    def create(cls, library: Metrics) -> RouterMetrics:
        r = library.registry
        return cls(
            library=library,
            managed_routes=Gauge(
                f"{PREFIX}_managed_routes",
                "PR routes the router maintains, per VirtualService and origin Service.",
                ["namespace", "virtual_service", "origin"],
                registry=r,
            ),
            virtual_service_writes=Counter(
                f"{PREFIX}_virtual_service_writes_total",
                "VirtualService writes, per action (create, update, delete).",
                ["action"],
                registry=r,
            ),
            gateway_route_writes=Counter(
                f"{PREFIX}_gateway_route_writes_total",
                "Gateway API route writes (derived and baseline routes), per kind and action.",
                ["kind", "action"],
                registry=r,
            ),
            conflicts_retried=Counter(
                f"{PREFIX}_conflicts_total",
                "Writes answered 409 Conflict (another writer changed the object); retried from a fresh read.",
                registry=r,
            ),
            reverts_detected=Counter(
                f"{PREFIX}_reverts_detected_total",
                "Writes of ours that another writer undid (a hand edit, a GitOps tool), per origin Service.",
                ["namespace", "origin"],
                registry=r,
            ),
            revert_backoffs=Counter(
                f"{PREFIX}_revert_backoffs_total",
                "Times the router stopped restoring an origin's routes for a while because they kept being undone.",
                ["namespace", "origin"],
                registry=r,
            ),
            skipped=Counter(
                f"{PREFIX}_skipped_total",
                "Reconciles that added no route for an origin's clones because of bad input, per reason "
                "(origin_not_found: the origin annotation names no Service of the namespace).",
                ["namespace", "reason"],
                registry=r,
            ),
        )
