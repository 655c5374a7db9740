"""Flags every controller process takes, with controller-runtime's names where they exist.

Both controllers are deployed and operated the same way, so the process-level knobs (where the
cluster is, what to watch, where metrics and probes listen, logging, dry-run) are defined once.

Every flag that is a duration takes what controller-runtime's flags take, a Go duration
(``90s``, ``2m``, ``1h30m``, ``500ms``, ``1.5h``: :func:`parse_duration`), and plain seconds
(``600``, ``0.3``) as before; a negative or malformed value is a usage error naming the flag.

``--shard-count`` and ``--shard-index`` split the work between independent shards, each with its
own Lease (:mod:`controller_common.sharding`).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from controller_common.sharding import UNSHARDED, Shard, index_from_environment


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
    context: str | None = None
    """The kubeconfig context to use (``--context``); None: the kubeconfig's current context."""
    shard: Shard = UNSHARDED
    """Which namespaces this process reconciles: shard ``index`` of ``count`` (all when unsharded)."""

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


_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# Go's time.ParseDuration: one or more decimal numbers, each with an optional fraction and a unit.
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_COMPONENT = re.compile(rf"({_NUMBER})(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_PLAIN_SECONDS = re.compile(_NUMBER)
DURATION_EXAMPLES = "e.g. 90s, 2m, 1h30m, 500ms, or plain seconds"


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (``1h30m``, ``1.5h``, ``500ms``, ``2m``) or a plain number of seconds.

    Raises ValueError, with what to write instead, for negative or malformed values.
    """
    value = text.strip()
    if value.startswith("-"):
        raise ValueError(f"{text!r} is negative: a duration must be 0 or more ({DURATION_EXAMPLES})")
    value = value.removeprefix("+")
    if not value:
        raise ValueError(f"empty duration ({DURATION_EXAMPLES})")
    if _PLAIN_SECONDS.fullmatch(value):
        return float(value)
    total, position = 0.0, 0
    while position < len(value):
        component = _COMPONENT.match(value, position)
        if component is None:
            raise ValueError(f"{text!r} is not a duration ({DURATION_EXAMPLES})")
        total += float(component[1]) * _UNIT_SECONDS[component[2]]
        position = component.end()
    return total


def duration(text: str) -> float:
    """``type=`` for argparse: seconds, or argparse's usage error naming the flag."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def format_duration(seconds: float) -> str:
    """``600`` -> ``10m``, ``0.25`` -> ``250ms``: defaults in help texts, written as a user would."""
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def add_process_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, then in-cluster)")
    parser.add_argument("--context", help="kubeconfig context to use (default: the kubeconfig's current context)")
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; default: all namespaces)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=8,
        help="concurrent reconciles (default 8: reconciles wait on the API server, not the CPU)",
    )
    parser.add_argument(
        "--resync-period", type=duration, default=600.0, help=f"between full resyncs ({DURATION_EXAMPLES}; default 10m)"
    )
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
    parser.add_argument("--leader-elect-lease-duration", type=duration, default=15.0, help="duration (default 15s)")
    parser.add_argument("--leader-elect-renew-deadline", type=duration, default=10.0, help="duration (default 10s)")
    parser.add_argument("--leader-elect-retry-period", type=duration, default=2.0, help="duration (default 2s)")
    parser.add_argument(
        "--cache-sync-timeout",
        type=duration,
        default=120.0,
        help=f"how long to wait for caches before exiting ({DURATION_EXAMPLES}; default 2m)",
    )
    parser.add_argument(
        "--shard-count",
        type=int,
        default=1,
        help="run as this many shards, each reconciling the namespaces whose stable hash falls to it, "
        "with its own Lease <id>-shard-<index> (default 1: unsharded)",
    )
    parser.add_argument(
        "--shard-index",
        type=int,
        default=None,
        help="this process's shard, 0..count-1 (default: the ordinal of a StatefulSet Pod in $POD_NAME, "
        "name-<n>, else 0)",
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
    shard = _shard(parser, args, env)
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
            lease_name=shard.lease_name(args.leader_election_id or name),
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
        context=args.context or None,
        shard=shard,
    )


def _shard(parser: argparse.ArgumentParser, args: argparse.Namespace, env: Mapping[str, str]) -> Shard:
    count = args.shard_count
    if count < 1:
        parser.error("--shard-count must be at least 1")
    from_flag = args.shard_index is not None
    index = args.shard_index if from_flag else index_from_environment(count, env)
    if not 0 <= index < count:
        source = "--shard-index" if from_flag else f"the ordinal of $POD_NAME={env.get('POD_NAME')!r}"
        parser.error(f"{source} is {index}: a shard index must be in 0..{count - 1} (--shard-count={count})")
    return Shard(count=count, index=index)
