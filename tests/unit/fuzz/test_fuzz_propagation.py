"""The JWT claim and baggage parsers, fuzzed: Python raises only ClaimError, and the Lua filter agrees.

The shipped Lua (both manifests, run under LuaJIT as Envoy would) and the Python reference model
(``service_router.propagation.rewrite_headers``) must set the same routing headers, report the
same change and warn exactly when the model rejects a source, on any request, not only those in
``cases.json``. Header values are what Envoy can deliver: tab, visible ASCII and non-ASCII text.
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from unit.fuzz.strategies import spliced
from unit.propagation.lua_harness import LuaFilter, lua_config, shipped_lua

from controller_common import headers
from controller_common.contract import HEADER_PREFIX
from service_router import propagation

HEADER_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zl", "Zp"]) | st.just("\t"), max_size=30
)
"""Characters a header value may carry through Envoy (no NUL, CR, LF or other controls but tab)."""

VALID_PAYLOAD = json.dumps(
    {
        "sub": "qa",
        "n": [1, -2.5e3, True, None],
        "service_routers": {"service-router-echo-qa": "echo-pr12.qa", "service-router-web-qa": "web-pr3.qa"},
    }
)
JSON_PIECES = st.sampled_from(
    [
        *['"', "\\", "\\u0041", "{", "}", "[", "]", ",", ":", "1e999", "-0", "NaN", "true", '"service_routers"', " "],
        *['"service-router-x-qa"', '"x-pr1.qa"', '"X-PR1.QA"', '{"a":' * 40, "]" * 40, "\u00e9", "\U0001f600"],
    ]
)
VALID_BAGGAGE = "k=v, service-router-echo-qa=echo-pr7.qa;ttl=1,service-router-api-qa=api%2Dpr3.qa"
"""Valid, and naming another clone of ``echo`` than the token: which source wins is visible."""
BAGGAGE_PIECES = st.sampled_from(
    [
        *["service-router-echo-qa=echo-pr12.qa", "service-router-web-qa", "=", "web-pr3.qa", "%2D", "%2", "%zz"],
        *["%00", ";ttl=1", ",", " ", "\t", "k=v", "Service-Router-x-qa=a.qa", "echo-pr12.prod", "," * 70, "a" * 9000],
    ]
)


def _b64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).rstrip(b"=").decode()


payload_texts = spliced(VALID_PAYLOAD, JSON_PIECES | HEADER_TEXT)
bearers = st.one_of(
    st.just(f"Bearer e30.{_b64url(VALID_PAYLOAD)}.c2ln"),
    payload_texts.map(lambda t: f"Bearer e30.{_b64url(t)}.c2ln"),
    st.tuples(st.sampled_from(["Bearer", "bearer", "Basic", "Bearer\t", " Bearer"]), payload_texts).map(
        lambda t: f"{t[0]} e30.{_b64url(t[1])}."
    ),
    HEADER_TEXT,
)
baggages = st.just(VALID_BAGGAGE) | spliced(VALID_BAGGAGE, BAGGAGE_PIECES | HEADER_TEXT) | HEADER_TEXT
payload_headers = payload_texts.map(_b64url) | HEADER_TEXT

requests = st.fixed_dictionaries(
    {},
    optional={
        "authorization": bearers,
        "baggage": baggages,
        "x-service-router-jwt-payload": payload_headers,
        "service-router-echo-qa": st.sampled_from(["echo-pr1.qa", "spoofed"]),
        "x-request-id": HEADER_TEXT,
    },
)


def _routing(found: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in found.items() if name.startswith(HEADER_PREFIX)}


@pytest.fixture(scope="module")
def filters() -> dict[str, LuaFilter]:
    return {variant: LuaFilter(shipped_lua(variant)) for variant in ("sidecar", "gateway")}


@given(bearers)
def test_the_bearer_parser_returns_valid_entries_or_a_claim_error(value: str) -> None:
    try:
        overrides = propagation.overrides_from_jwt(value)
    except propagation.ClaimError:
        return
    for name, header_value in overrides.items():
        propagation.check_entry(name, header_value)


@given(baggages)
def test_the_baggage_parser_returns_valid_entries_or_a_claim_error(value: str) -> None:
    try:
        overrides = propagation.overrides_from_baggage(value)
    except propagation.ClaimError:
        return
    assert len(overrides) <= propagation.MAX_ENTRIES
    for name, header_value in overrides.items():
        propagation.check_entry(name, header_value)


@given(payload_headers)
def test_the_payload_header_parser_returns_valid_entries_or_a_claim_error(value: str) -> None:
    try:
        propagation.overrides_from_payload_header(value)
    except propagation.ClaimError:
        return


@given(request=requests, variant=st.sampled_from(["sidecar", "gateway"]))
def test_lua_and_python_rewrite_any_request_alike(
    request: dict[str, str], variant: str, filters: dict[str, LuaFilter]
) -> None:
    lua = filters[variant]
    config = lua_config(lua.source)
    expected, changed = propagation.rewrite_headers(request, config)
    run = lua.run(list(request.items()))
    assert _routing(run.as_dict()) == _routing(expected), (request, run.logs)
    assert run.route_cache_cleared == (1 if changed else 0), (request, run.logs)


@given(request=requests)
def test_lua_warns_exactly_when_python_rejects_a_source(request: dict[str, str], filters: dict[str, LuaFilter]) -> None:
    """Sidecar reads baggage and the bearer token: one warning per source the model rejects."""
    rejected = 0
    for parse, header in (
        (propagation.overrides_from_baggage, "baggage"),
        (propagation.overrides_from_jwt, "authorization"),
    ):
        try:
            parse(request.get(header))
        except propagation.ClaimError:
            rejected += 1
    run = filters["sidecar"].run(list(request.items()))
    assert bool(run.warnings()) == bool(rejected), (request, run.logs)


entries = st.lists(
    st.tuples(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True), st.integers(1, 10**6)),
    min_size=1,
    max_size=5,
)


@given(entries, st.sampled_from(["qa", "default"]))
def test_what_the_header_helper_prints_the_parsers_read_back(pairs: list[tuple[str, int]], namespace: str) -> None:
    """``controller_common.headers`` (CLI, PR comment) writes a claim and baggage the filter accepts."""
    triples = [(origin, f"{origin}-pr{number}", namespace) for origin, number in pairs]
    expected = headers.routing_headers(triples)
    assert propagation.parse_claim(json.loads(headers.claim_json(triples))[propagation.JWT_CLAIM]) == expected
    assert propagation.overrides_from_baggage(headers.baggage_value(triples)) == expected
    assert all(headers.origin_from_clone(clone) == origin for origin, clone, _ in triples)
