"""``service-router header``: how to send a request to pull-request clones, for people.

Prints the routing header lines, the ``service_routers`` JWT claim, the ``baggage`` value and a
curl example for one or more clones, using the same text as the replicator's PR comment
(:func:`controller_common.headers.header_instructions`). Works offline: the origin of a clone is
``--origin`` or its name without the ``-pr<N>`` suffix. Every value is checked against the claim
schema the EnvoyFilter enforces, so what it prints is accepted by the filter.

A recipe for a clone that does not exist routes nowhere, so each clone Service is also looked up
in the cluster (``--kubeconfig``, ``$KUBECONFIG``, in-cluster, ``~/.kube/config``): one that is
missing or is no clone of its origin is named on stderr and the exit code is 1 (the recipe is
still printed, for a PR about to open). When no cluster can be asked, the output says it was not
checked; ``--offline`` skips the lookup.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from controller_common import contract, errors, objects
from controller_common.headers import Entry, header_instructions, origin_from_clone, routing_headers
from controller_common.kube import SERVICES, KubeClient
from service_router.propagation import ClaimError, headers_for


class NotChecked(Exception):
    """No cluster could be asked (no kubeconfig, unreachable, forbidden): the reason."""


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
    parser.add_argument("--offline", action="store_true", help="do not look the clones up in the cluster")
    parser.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, then in-cluster)")
    parser.add_argument("--context", help="kubeconfig context (default: the current context)")
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


def clone_problems(entries: list[Entry], *, kubeconfig: str | None, context: str | None) -> list[str]:
    """What stops each header from routing, as the cluster says; raises :class:`NotChecked`."""
    try:
        client = KubeClient.from_environment(kubeconfig, context, request_timeout=5.0)
    except Exception as exc:  # the kubernetes client's config errors are its own types
        raise NotChecked(f"no cluster configured: {exc}") from None
    problems = []
    try:
        for origin, clone, namespace in entries:
            try:
                service = client.get(SERVICES, namespace, clone)
            except errors.NotFound:
                problems.append(
                    f"no Service {clone} in namespace {namespace}: nothing answers this header until the "
                    f"replicator creates it (is the pull request open? kubectl -n {namespace} get svc "
                    f"-l {contract.MANAGED_BY_LABEL}=replicator)"
                )
                continue
            named = objects.annotations(service).get(contract.ORIGIN_SERVICE_ANNOTATION)
            if named != origin:
                problems.append(
                    f"Service {clone} in namespace {namespace} is no clone of {origin} "
                    f"({contract.ORIGIN_SERVICE_ANNOTATION}: {named or 'absent'}): the router adds no route for it"
                )
    except (errors.ApiError, OSError) as exc:
        raise NotChecked(f"{type(exc).__name__}: {exc}") from None
    finally:
        client.close()
    return problems


def run_header(args: argparse.Namespace) -> int:
    """Print the instructions; exit 2 with a reason when a name would not pass the filter's schema,
    1 when a clone Service is missing from the cluster (or no clone of its origin)."""
    try:
        entries = _entries(args)
        headers_for(routing_headers(entries))
    except (ValueError, ClaimError) as err:
        print(f"service-router header: {err}", file=sys.stderr)
        return 2
    problems: list[str] = []
    if not args.offline:
        try:
            problems = clone_problems(entries, kubeconfig=args.kubeconfig, context=args.context)
        except NotChecked as why:
            print(f"Not checked against a cluster ({why}): these route only once the clone Services exist.\n")
    sys.stdout.write(header_instructions(entries, url=args.url))
    for problem in problems:
        print(f"service-router header: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Run ``header`` alone (the console script ``service-router`` wires it in as a subcommand)."""
    parser = argparse.ArgumentParser(prog="service-router")
    add_header_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
