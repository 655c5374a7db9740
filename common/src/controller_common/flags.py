"""Flags every controller process takes, with controller-runtime's names where they exist.

Both controllers are deployed and operated the same way, so the process-level knobs (where the
cluster is, what to watch, where metrics and probes listen, logging, dry-run) are defined once.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessSettings:
    kubeconfig: str | None
    namespaces: tuple[str, ...]
    """Namespaces to watch; empty means the whole cluster."""
    workers: int
    resync_period_seconds: float
    metrics_bind_address: str
    health_probe_bind_address: str
    log_level: str
    log_format: str
    dry_run: bool
    leader_election: LeaderElectionSettings | None = None
    """None: run workers at once (a single replica, or local runs)."""
    cache_sync_timeout_seconds: float = 120.0

    @property
    def log_json(self) -> bool | None:
        """``--log-format`` for :func:`controller_common.logging.configure_logging` (None: decide by TTY)."""
        return {"json": True, "console": False}.get(self.log_format)


@dataclass(frozen=True)
class LeaderElectionSettings:
    lease_name: str
    namespace: str
    lease_duration_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0


def add_process_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, then in-cluster)")
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; default: all namespaces)",
    )
    parser.add_argument("--workers", type=int, default=2, help="concurrent reconciles (default 2)")
    parser.add_argument("--resync-period", type=float, default=600.0, help="seconds between full resyncs (default 600)")
    parser.add_argument(
        "--metrics-bind-address", default=":8080", help='address for /metrics (default ":8080"; "0" disables)'
    )
    parser.add_argument(
        "--health-probe-bind-address",
        default=":8081",
        help='address for /healthz and /readyz (default ":8081")',
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--log-format",
        default="auto",
        choices=["auto", "json", "console"],
        help="auto: JSON unless stdout is a terminal",
    )
    parser.add_argument("--dry-run", action="store_true", help="log the plan of every reconcile, write nothing")
    parser.add_argument(
        "--leader-elect",
        action="store_true",
        help="run workers only while holding a coordination.k8s.io Lease (use with more than one replica)",
    )
    parser.add_argument("--leader-election-id", help="Lease name (default: the controller's name)")
    parser.add_argument(
        "--leader-election-namespace",
        help="Lease namespace (default: $POD_NAMESPACE, the in-cluster namespace, else 'default')",
    )
    parser.add_argument("--leader-elect-lease-duration", type=float, default=15.0, help="seconds (default 15)")
    parser.add_argument("--leader-elect-renew-deadline", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--leader-elect-retry-period", type=float, default=2.0, help="seconds (default 2)")
    parser.add_argument(
        "--cache-sync-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for caches before exiting (default 120)",
    )


IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _default_namespace(env: Mapping[str, str]) -> str:
    if env.get("POD_NAMESPACE"):
        return env["POD_NAMESPACE"]
    try:
        return IN_CLUSTER_NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"


def process_settings(
    parser: argparse.ArgumentParser, args: argparse.Namespace, env: Mapping[str, str], *, name: str
) -> ProcessSettings:
    """Validate the process flags; a bad value exits with a usage error (status 2)."""
    leader_election = None
    if args.leader_elect:
        lease, renew, retry = (
            args.leader_elect_lease_duration,
            args.leader_elect_renew_deadline,
            args.leader_elect_retry_period,
        )
        if not 0 < retry < renew < lease:
            parser.error("leader election needs 0 < retry period < renew deadline < lease duration")
        leader_election = LeaderElectionSettings(
            lease_name=args.leader_election_id or name,
            namespace=args.leader_election_namespace or _default_namespace(env),
            lease_duration_seconds=lease,
            renew_deadline_seconds=renew,
            retry_period_seconds=retry,
        )
    if args.cache_sync_timeout <= 0:
        parser.error("--cache-sync-timeout must be positive")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.resync_period <= 0:
        parser.error("--resync-period must be positive")
    return ProcessSettings(
        kubeconfig=args.kubeconfig or env.get("KUBECONFIG") or None,
        namespaces=tuple(dict.fromkeys(args.namespace)),
        workers=args.workers,
        resync_period_seconds=args.resync_period,
        metrics_bind_address=args.metrics_bind_address,
        health_probe_bind_address=args.health_probe_bind_address,
        log_level=args.log_level,
        log_format=args.log_format,
        dry_run=args.dry_run,
        leader_election=leader_election,
        cache_sync_timeout_seconds=args.cache_sync_timeout,
    )
