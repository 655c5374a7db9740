"""Flags every controller process takes, with controller-runtime's names where they exist.

Both controllers are deployed and operated the same way, so the process-level knobs (where the
cluster is, what to watch, where metrics and probes listen, logging, dry-run) are defined once.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass


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


def process_settings(
    parser: argparse.ArgumentParser, args: argparse.Namespace, env: Mapping[str, str]
) -> ProcessSettings:
    """Validate the process flags; a bad value exits with a usage error (status 2)."""
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
    )
