"""The service-router's configuration: flags override environment, validated once in ``main()``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from controller_common.flags import ProcessSettings, add_process_flags, duration, format_duration, process_settings
from service_router import __version__
from service_router.gateway_api import ROUTING_APIS, RoutingApi
from service_router.reverts import DEFAULT_BACKOFF_SECONDS, DEFAULT_THRESHOLD, DEFAULT_WINDOW_SECONDS


@dataclass(frozen=True)
class RevertSettings:
    """When another writer keeps undoing our routes: how many times, within what, and how long to yield."""

    threshold: int = DEFAULT_THRESHOLD
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS


@dataclass(frozen=True)
class Settings:
    process: ProcessSettings
    reverts: RevertSettings = RevertSettings()
    routing_api: RoutingApi = "auto"

    def redacted(self) -> dict[str, Any]:
        return asdict(self)


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    add_process_flags(parser)
    parser.add_argument(
        "--routing-api",
        choices=ROUTING_APIS,
        default="auto",
        help="how origins are routed: Istio VirtualServices, Gateway API routes (HTTPRoute/GRPCRoute attached "
        "to the Service), or auto (default): the Gateway API where the origin Service already has such a route "
        "or VirtualServices are not served, the VirtualService otherwise",
    )
    parser.add_argument(
        "--revert-threshold",
        type=int,
        default=DEFAULT_THRESHOLD,
        help=f"undone writes within --revert-window that make the router stop restoring (default {DEFAULT_THRESHOLD})",
    )
    parser.add_argument(
        "--revert-window",
        type=duration,
        default=DEFAULT_WINDOW_SECONDS,
        help=f"duration, e.g. 10m or 600 (default {format_duration(DEFAULT_WINDOW_SECONDS)})",
    )
    parser.add_argument(
        "--revert-backoff",
        type=duration,
        default=DEFAULT_BACKOFF_SECONDS,
        help="how long to stop restoring, doubled while the fight goes on "
        f"(default {format_duration(DEFAULT_BACKOFF_SECONDS)})",
    )


def settings_from_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> Settings:
    if args.revert_threshold < 1:
        parser.error("--revert-threshold must be at least 1")
    if args.revert_window <= 0 or args.revert_backoff <= 0:
        parser.error("--revert-window and --revert-backoff must be positive")
    return Settings(
        process=process_settings(parser, args, os.environ if environ is None else environ, name="service-router"),
        reverts=RevertSettings(
            threshold=args.revert_threshold,
            window_seconds=args.revert_window,
            backoff_seconds=args.revert_backoff,
        ),
        routing_api=args.routing_api,
    )


def parse_settings(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="service-router",
        description="Route header-matched requests to pull-request clones in the origin's VirtualService. "
        "Helper commands: 'service-router routes --help', 'service-router header --help', "
        "'service-router uninstall --help'.",
    )
    parser.add_argument("--version", action="version", version=f"service-router {__version__}")
    add_run_flags(parser)
    return settings_from_args(parser, parser.parse_args(argv), environ)
