"""``service-router header``: how to send a request to pull-request clones, for people.

Prints the routing header lines, the ``service_routers`` JWT claim, the ``baggage`` value and a
curl example for one or more clones, using the same text as the replicator's PR comment
(:func:`controller_common.headers.header_instructions`). Works offline: the origin of a clone is
``--origin`` or its name without the ``-pr<N>`` suffix. Every value is checked against the claim
schema the EnvoyFilter enforces, so what it prints is accepted by the filter.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from controller_common.headers import Entry, header_instructions, origin_from_clone, routing_headers
from service_router.propagation import ClaimError, headers_for


def add_header_command(subparsers: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Register ``header`` on the ``service-router`` command line; the handler is ``run_header``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "header",
        help="print the header, JWT claim and baggage that route a request to PR clones",
        description=(
            "Print the routing header line(s), the service_routers JWT claim, the baggage value and "
            "a curl example that route requests to the given clone Services."
        ),
    )
    parser.add_argument("clones", nargs="+", metavar="CLONE", help="clone Service name, e.g. echo-pr12")
    parser.add_argument("-n", "--namespace", default="default", help="namespace of the clones (default: default)")
    parser.add_argument(
        "--origin",
        action="append",
        metavar="NAME",
        help="origin Service of each CLONE, in order (default: CLONE without its -pr<N> suffix)",
    )
    parser.add_argument("--url", help="URL for the curl example (default: http://<origin>.<namespace>/)")
    parser.set_defaults(handler=run_header)
    return parser


def _entries(args: argparse.Namespace) -> list[Entry]:
    origins: list[str] | None = args.origin
    if origins is not None and len(origins) != len(args.clones):
        raise ValueError(f"got {len(origins)} --origin for {len(args.clones)} clones: give one per clone or none")
    entries = []
    for index, clone in enumerate(args.clones):
        origin = origins[index] if origins is not None else origin_from_clone(clone)
        if origin is None:
            raise ValueError(f"{clone!r} has no -pr<N> suffix: pass --origin")
        entries.append((origin, clone, args.namespace))
    return entries


def run_header(args: argparse.Namespace) -> int:
    """Print the instructions; exit 2 with a reason when a name would not pass the filter's schema."""
    try:
        entries = _entries(args)
        headers_for(routing_headers(entries))
    except (ValueError, ClaimError) as err:
        print(f"service-router header: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(header_instructions(entries, url=args.url))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``header`` alone (the console script ``service-router`` wires it in as a subcommand)."""
    parser = argparse.ArgumentParser(prog="service-router")
    add_header_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
