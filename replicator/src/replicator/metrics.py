"""The replicator's domain metrics, on the process registry of :mod:`controller_common.metrics`.

Library metrics (reconciles, work queue, informers, events) come from ``controller_common``;
these answer what a platform team asks: how many environments stand, what GitHub costs us and
how much budget is left, which deliveries arrived, and why pull requests were skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from controller_common.metrics import Metrics

PREFIX = "replicator"


@dataclass(frozen=True)
class ReplicatorMetrics:
    library: Metrics
    environments: Gauge
    github_requests: Counter
    github_rate_limit_remaining: Gauge
    github_rate_limit_reset: Gauge
    github_rate_limit_pauses: Counter
    webhook_deliveries: Counter
    policy_skips: Gauge
    origin_errors: Counter
    clone_writes: Counter
    write_conflicts: Counter

    @classmethod
    def create(cls, library: Metrics) -> ReplicatorMetrics:
        r = library.registry
        return cls(
            library=library,
            environments=Gauge(
                f"{PREFIX}_environments",
                "Pull-request environments (clone Deployments) per origin and repository.",
                ["namespace", "origin", "repository"],
                registry=r,
            ),
            github_requests=Counter(
                f"{PREFIX}_github_requests_total",
                "GitHub REST requests per endpoint and HTTP status (304 = free conditional hit, 0 = transport error).",
                ["endpoint", "status"],
                registry=r,
            ),
            github_rate_limit_remaining=Gauge(
                f"{PREFIX}_github_rate_limit_remaining",
                "GitHub core rate limit left for the token.",
                registry=r,
            ),
            github_rate_limit_reset=Gauge(
                f"{PREFIX}_github_rate_limit_reset_timestamp_seconds",
                "When GitHub resets the core rate limit (Unix time).",
                registry=r,
            ),
            github_rate_limit_pauses=Counter(
                f"{PREFIX}_github_rate_limit_pauses_total",
                "Times GitHub polling paused for every repository because GitHub said to wait, per limit "
                "(primary: the hourly budget is spent; secondary: GitHub's abuse limit).",
                ["limit"],
                registry=r,
            ),
            webhook_deliveries=Counter(
                f"{PREFIX}_webhook_deliveries_total",
                "Webhook deliveries per GitHub event and result (accepted, ignored, ping, bad-signature, ...).",
                ["event", "result"],
                registry=r,
            ),
            policy_skips=Gauge(
                f"{PREFIX}_policy_skipped_pull_requests",
                "Open pull requests without an environment, per origin and reason (draft, fork, over-limit, ...).",
                ["namespace", "origin", "reason"],
                registry=r,
            ),
            origin_errors=Counter(
                f"{PREFIX}_origin_errors_total",
                "Origins that could not be reconciled, per reason (annotation, github, conflict, ...).",
                ["reason"],
                registry=r,
            ),
            clone_writes=Counter(
                f"{PREFIX}_clone_writes_total",
                "Writes to clone objects per kind and action (create, update, delete).",
                ["kind", "action"],
                registry=r,
            ),
            write_conflicts=Counter(
                f"{PREFIX}_write_conflicts_total",
                "Clone writes answered 409 (AlreadyExists: the cache had not caught up; Conflict: a stale "
                "resourceVersion); the origin is re-read from the cache and reconciled again, not an error.",
                ["kind", "action"],
                registry=r,
            ),
        )
