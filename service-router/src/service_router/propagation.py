"""The ``service_routers`` claim and the ``baggage`` members: one schema, parsed the way the Lua filter does.

A QA request names the pull-request clones it wants in propagated context rather than in headers
that the first service would drop: a ``service_routers`` claim in the bearer JWT every service
already forwards, the payload of a JWT that Istio verified (``outputPayloadToHeader``), or W3C
``baggage`` members that OpenTelemetry forwards. The EnvoyFilter in ``manifests/istio/`` turns
them into ``service-router-<origin>-<ns>: <clone>.<ns>`` headers before the route is chosen.

This module is the Python twin of that Lua filter. It owns the schema (the limits below are also
written at the top of the Lua source, and a test proves the two agree) and a reference model of the
whole filter, :func:`rewrite_headers`, that the tests run against the Lua source on a shared table
of cases. Nothing here verifies a signature: the filter never does, Istio's RequestAuthentication
does (see ``manifests/istio/README.md`` for what that means for security).

The claim, by example::

    {"service_routers": {
        "service-router-echo-qa": "echo-pr12.qa",
        "service-router-payments-api-qa": "payments-api-pr7.qa"
    }}

- an object of at most :data:`MAX_ENTRIES` entries (an empty object is valid and routes nothing);
- each name is ``service-router-<origin>-<ns>``, each value ``<clone>.<ns>``: ``<origin>``,
  ``<clone>`` and ``<ns>`` are DNS labels (``[a-z0-9]([a-z0-9-]*[a-z0-9])?``, at most 63 chars),
  and the name must end in the value's namespace, so a name is at most 142 characters;
- one bad entry rejects the whole claim (a half-applied claim would route part of a call graph
  to the clones and the rest to the origins, which is harder to notice than no routing at all).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from controller_common.contract import BAGGAGE_KEY_PREFIX, HEADER_PREFIX, JWT_CLAIM

MAX_ENTRIES = 32
"""Entries in one claim, or ``service-router-`` members in one baggage header."""
MAX_LABEL_LENGTH = 63
MAX_NAME_LENGTH = len(HEADER_PREFIX) + MAX_LABEL_LENGTH + 1 + MAX_LABEL_LENGTH
MAX_VALUE_LENGTH = MAX_LABEL_LENGTH + 1 + MAX_LABEL_LENGTH
MAX_TOKEN_BYTES = 8192
"""Longest ``authorization`` or payload header the filter decodes; longer ones are ignored."""
MAX_JSON_DEPTH = 32
"""Deepest JSON nesting accepted in a JWT payload (scalars count as one level)."""
MAX_BAGGAGE_BYTES = 8192
MAX_BAGGAGE_MEMBERS = 64
"""W3C Baggage limits: beyond either, the whole ``baggage`` header is ignored."""

DEFAULT_PAYLOAD_HEADER = "x-service-router-jwt-payload"
"""Header the gateway filter reads the verified payload from (RequestAuthentication's ``outputPayloadToHeader``)."""

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_BEARER = re.compile(r"[ \t]*([A-Za-z]+)[ \t]+([^ \t]+)[ \t]*")
_JWS = re.compile(r"([^.]+)\.([^.]+)\.([^.]*)")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_OWS = " \t"


class ClaimError(ValueError):
    """A source of overrides is malformed: the filter ignores that whole source."""


def _is_label(text: str) -> bool:
    return len(text) <= MAX_LABEL_LENGTH and _LABEL.fullmatch(text) is not None


def check_entry(name: object, value: object) -> None:
    """Raise :class:`ClaimError` unless ``name: value`` is one valid routing override."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise ClaimError(f"entry {name!r} must map a string to a string")
    if len(name) > MAX_NAME_LENGTH or not name.startswith(HEADER_PREFIX):
        raise ClaimError(f"{name!r} is not a service-router header name")
    clone, dot, namespace = value.partition(".")
    if not dot or not _is_label(clone) or not _is_label(namespace):
        raise ClaimError(f"{name!r}: value {value!r} is not <clone>.<namespace>")
    rest = name[len(HEADER_PREFIX) :]
    origin, suffix = rest[: -len(namespace) - 1], rest[-len(namespace) - 1 :]
    if suffix != f"-{namespace}" or not _is_label(origin):
        raise ClaimError(f"{name!r} is not service-router-<origin>-{namespace}")


def parse_claim(value: object) -> dict[str, str]:
    """The overrides of a decoded ``service_routers`` claim; :class:`ClaimError` on any wrong shape."""
    if not isinstance(value, dict):
        raise ClaimError(f"{JWT_CLAIM} must be a JSON object, not {type(value).__name__}")
    if len(value) > MAX_ENTRIES:
        raise ClaimError(f"{JWT_CLAIM} has {len(value)} entries, more than {MAX_ENTRIES}")
    for name, header_value in value.items():
        check_entry(name, header_value)
    return dict(value)


def _b64url_decode(segment: str) -> bytes:
    # Padding is optional (JWTs omit it); the alphabet is strict, as in the Lua decoder.
    text = segment.removesuffix("=").removesuffix("=")
    if len(text) % 4 == 1 or not _B64URL.fullmatch(text):
        raise ClaimError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as err:  # pragma: no cover - the checks above exclude these
        raise ClaimError("not base64url") from err


def _reject_constant(name: str) -> Any:
    raise ClaimError(f"{name} is not JSON")


def _depth(value: object) -> int:
    """Nesting depth: 1 for a scalar or an empty container, as the Lua parser counts it."""
    deepest, stack = 1, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def _claim_from_payload(payload: bytes) -> dict[str, str]:
    # Most tokens carry no claim: they are not parsed (a claim name written with escapes is not seen).
    if f'"{JWT_CLAIM}"'.encode() not in payload:
        return {}
    # Bytes are decoded leniently: only ASCII can pass the schema, and the Lua parser is byte-based.
    text = payload.decode("utf-8", "surrogateescape")
    try:
        document = json.loads(text, parse_constant=_reject_constant, parse_int=float)
    except (ValueError, RecursionError) as err:
        raise ClaimError(f"payload is not JSON: {err}") from err
    if not isinstance(document, dict):
        raise ClaimError("payload is not a JSON object")
    if _depth(document) > MAX_JSON_DEPTH:
        raise ClaimError(f"payload nests deeper than {MAX_JSON_DEPTH}")
    if JWT_CLAIM not in document:
        return {}
    return parse_claim(document[JWT_CLAIM])


def overrides_from_payload_header(b64url_json: str | None) -> dict[str, str]:
    """Overrides in a verified payload header (base64url JSON); ``{}`` when absent or without the claim."""
    if b64url_json is None:
        return {}
    if len(b64url_json) > MAX_TOKEN_BYTES:
        raise ClaimError(f"payload header longer than {MAX_TOKEN_BYTES} bytes")
    return _claim_from_payload(_b64url_decode(b64url_json))


def overrides_from_jwt(authorization_header: str | None) -> dict[str, str]:
    """Overrides in the bearer JWT's claim, signature NOT verified.

    Anything that is not ``Bearer <a>.<b>.<c>`` (no header, Basic, an opaque token, a JWE) is not
    a source and yields ``{}``; a JWT whose payload or claim is malformed raises :class:`ClaimError`.
    """
    if authorization_header is None:
        return {}
    if len(authorization_header) > MAX_TOKEN_BYTES:
        raise ClaimError(f"authorization longer than {MAX_TOKEN_BYTES} bytes")
    bearer = _BEARER.fullmatch(authorization_header)
    if bearer is None or bearer.group(1).lower() != "bearer":
        return {}
    jws = _JWS.fullmatch(bearer.group(2))
    if jws is None:
        return {}
    return _claim_from_payload(_b64url_decode(jws.group(2)))


def overrides_from_baggage(baggage_header: str | None) -> dict[str, str]:
    """Overrides in the ``service-router-`` members of a W3C ``baggage`` header.

    Other members are ignored unread. Beyond 8192 bytes or 64 members the whole header is
    ignored (:class:`ClaimError`), as is any ``service-router-`` member that is not a valid entry
    after percent-decoding. Properties (``;k=v``) are ignored; a repeated key keeps its last value.
    """
    if baggage_header is None:
        return {}
    if len(baggage_header.encode("utf-8", "surrogateescape")) > MAX_BAGGAGE_BYTES:
        raise ClaimError(f"baggage longer than {MAX_BAGGAGE_BYTES} bytes")
    members = [m.strip(_OWS) for m in baggage_header.split(",")]
    members = [m for m in members if m]
    if len(members) > MAX_BAGGAGE_MEMBERS:
        raise ClaimError(f"baggage has {len(members)} members, more than {MAX_BAGGAGE_MEMBERS}")
    overrides: dict[str, str] = {}
    for member in members:
        key, eq, raw = member.split(";", 1)[0].partition("=")
        key = key.strip(_OWS)
        if not key.startswith(BAGGAGE_KEY_PREFIX):
            continue
        raw = raw.strip(_OWS)
        if not eq or _BAD_PERCENT.search(raw):
            raise ClaimError(f"baggage member {key!r} has no valid value")
        value = unquote_to_bytes(raw).decode("latin-1")
        check_entry(key, value)
        overrides[key] = value
    if len(overrides) > MAX_ENTRIES:
        raise ClaimError(f"baggage has {len(overrides)} service-router members, more than {MAX_ENTRIES}")
    return overrides


def merge_overrides(
    *,
    payload: Mapping[str, str] | None = None,
    bearer: Mapping[str, str] | None = None,
    baggage: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Per header name: verified payload > bearer JWT claim > baggage.

    Verified first because Istio checked its signature; the bearer claim next because it is the
    deliberate, issued statement of the QA tool chain for this request; baggage last because it
    is ambient: any hop may add members and OpenTelemetry carries them into work the tester never
    meant to route (queues, retries, batch jobs). Different headers from different sources combine.
    """
    merged: dict[str, str] = {}
    for layer in (baggage, bearer, payload):  # lowest precedence first
        merged.update(layer or {})
    return merged


def headers_for(overrides: Mapping[str, str]) -> dict[str, str]:
    """The request headers that carry ``overrides``, sorted by name; :class:`ClaimError` if any is invalid."""
    for name, value in overrides.items():
        check_entry(name, value)
    return dict(sorted(overrides.items()))


@dataclass(frozen=True, kw_only=True)
class FilterConfig:
    """The flags at the top of the Lua source (``-- BEGIN CONFIG``), with the sidecar's defaults."""

    payload_header: str = ""
    read_bearer: bool = True
    read_baggage: bool = True
    strip_client_headers: bool = False


def rewrite_headers(headers: Mapping[str, str], config: FilterConfig = FilterConfig()) -> tuple[dict[str, str], bool]:
    """Reference model of ``envoy_on_request``: the request headers after the filter, and whether they changed.

    ``headers`` has lower-case names and one (already comma-joined) value each, as Envoy's
    ``headers:get`` sees them. A malformed source contributes nothing; the others still apply.
    """
    out = dict(headers)
    changed = False
    if config.strip_client_headers:
        for name in [n for n in out if n.startswith(HEADER_PREFIX)]:
            del out[name]
            changed = True
    readers: list[tuple[str, Callable[[str | None], dict[str, str]], str]] = []
    if config.read_baggage:
        readers.append(("baggage", overrides_from_baggage, "baggage"))
    if config.read_bearer:
        readers.append(("bearer", overrides_from_jwt, "authorization"))
    if config.payload_header:
        readers.append(("payload", overrides_from_payload_header, config.payload_header))
    layers: dict[str, dict[str, str]] = {}
    for source, parse, header in readers:
        try:
            layers[source] = parse(out.get(header))
        except ClaimError:
            continue
    for name, value in merge_overrides(**layers).items():
        if out.get(name) != value:
            out[name] = value
            changed = True
    return out, changed
