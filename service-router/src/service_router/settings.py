"""The service-router's configuration: flags override environment, validated once in ``main()``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from controller_common.flags import ProcessSettings, add_process_flags, process_settings
from service_router import __version__


@dataclass(frozen=True)
class Settings:
    process: ProcessSettings

    def redacted(self) -> dict[str, Any]:
        return asdict(self)


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    add_process_flags(parser)


def settings_from_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> Settings:
    return Settings(
        process=process_settings(parser, args, os.environ if environ is None else environ, name="service-router")
    )


def parse_settings(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="service-router",
        description="Route header-matched requests to pull-request clones in the origin's VirtualService. "
        "Helper commands: 'service-router routes --help', 'service-router header --help'.",
    )
    parser.add_argument("--version", action="version", version=f"service-router {__version__}")
    add_run_flags(parser)
    return settings_from_args(parser, parser.parse_args(argv), environ)
