"""How a person routes a request to pull-request clones: the same text everywhere it is shown.

``service-router header`` prints it, the replicator's sticky PR comment and the GitHub deployment
description reuse it, so the three can never disagree on a header name or a claim's shape. Pure
functions of ``(origin service, clone service, namespace)`` triples; no cluster access (the
origin of a clone is the annotation ``mercari.com/service-router-origin-service`` on it, which
the caller reads when it has a cluster).

The forms, by how far they travel (see ``manifests/istio/README.md``):

- the header itself reaches the first service only (unless every service forwards it);
- the ``service_routers`` JWT claim reaches every hop that forwards ``Authorization``;
- the ``baggage`` members reach every hop instrumented with OpenTelemetry.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence

from controller_common.contract import JWT_CLAIM, routing_header, routing_value

Entry = tuple[str, str, str]
"""(origin Service name, clone Service name, namespace)."""

DEPLOYMENT_DESCRIPTION_LIMIT = 140
"""GitHub rejects deployment status descriptions longer than this."""

_PR_SUFFIX = re.compile(r"^(?P<origin>.+)-pr[0-9]+$")


def origin_from_clone(clone: str) -> str | None:
    """``echo-pr12`` -> ``echo``; ``None`` when the name has no ``-pr<N>`` suffix.

    Only a guess: a clone name shortened with a hash (``contract.clone_name``) does not give back
    its origin. The clone Service's origin annotation is the truth.
    """
    match = _PR_SUFFIX.match(clone)
    return match.group("origin") if match else None


def routing_headers(entries: Sequence[Entry]) -> dict[str, str]:
    """Header name to value, in the order given (a later entry for the same header wins)."""
    return {routing_header(origin, ns): routing_value(clone, ns) for origin, clone, ns in entries}


def header_lines(entries: Sequence[Entry]) -> list[str]:
    return [f"{name}: {value}" for name, value in routing_headers(entries).items()]


def claim_json(entries: Sequence[Entry]) -> str:
    """The JWT claim, ``{"service_routers": {...}}``, as compact JSON."""
    return json.dumps({JWT_CLAIM: routing_headers(entries)}, separators=(",", ":"))


def baggage_value(entries: Sequence[Entry]) -> str:
    """The ``baggage`` header value: one ``name=value`` member per header (no escaping needed)."""
    return ",".join(f"{name}={value}" for name, value in routing_headers(entries).items())


def curl_example(entries: Sequence[Entry], *, url: str | None = None) -> str:
    """A curl command sending both the headers (first hop) and the baggage (every hop)."""
    origin, _, namespace = entries[0]
    target = url or f"http://{origin}.{namespace}/"
    parts = ["curl"]
    for line in header_lines(entries):
        parts += ["-H", shlex.quote(line)]
    parts += ["-H", shlex.quote(f"baggage: {baggage_value(entries)}"), shlex.quote(target)]
    return " ".join(parts)


def header_instructions(entries: Sequence[Entry], *, url: str | None = None) -> str:
    """The full text: headers, claim, baggage and a curl example (reads as plain text and Markdown)."""
    if not entries:
        raise ValueError("no clones to route to")
    clones = ", ".join(f"{clone} (in place of {origin}, namespace {ns})" for origin, clone, ns in entries)
    indent = "    "
    lines = [
        f"To route requests to {clones}:",
        "",
        "Headers (reach the first service; deeper hops only if each service forwards them):",
        "",
        *(indent + line for line in header_lines(entries)),
        "",
        "JWT claim (every hop that forwards Authorization; add it to the token the API gateway issues):",
        "",
        indent + claim_json(entries),
        "",
        "Baggage (every hop instrumented with OpenTelemetry):",
        "",
        indent + f"baggage: {baggage_value(entries)}",
        "",
        "Example:",
        "",
        indent + curl_example(entries, url=url),
    ]
    return "\n".join(lines) + "\n"


def deployment_description(entries: Sequence[Entry]) -> str:
    """One line for a GitHub deployment status: the header(s), cut to GitHub's 140 characters."""
    text = "Route with " + ", ".join(header_lines(entries))
    if len(text) <= DEPLOYMENT_DESCRIPTION_LIMIT:
        return text
    return text[: DEPLOYMENT_DESCRIPTION_LIMIT - 1] + "…"
