"""The shipped Lua filter and the Python model do the same thing to every request in cases.json."""

from __future__ import annotations

import base64
import random
from typing import Any

import pytest
from unit.propagation.lua_harness import CASES, LuaFilter, lua_config, request_headers, shipped_lua

from controller_common.contract import HEADER_PREFIX
from service_router import propagation

CASE_IDS = [case["id"] for case in CASES]


def _routing(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.startswith(HEADER_PREFIX)}


def _others(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if not name.startswith(HEADER_PREFIX)}


def _joined(headers: list[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, list[str]] = {}
    for name, value in headers:
        joined.setdefault(name, []).append(value)
    return {name: ",".join(values) for name, values in joined.items()}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_lua_filter_sets_the_expected_headers(case: dict[str, Any], lua_filters: dict[str, LuaFilter]) -> None:
    """Lua: the routing headers, the other headers untouched, route cache cleared iff changed, warnings."""
    headers = request_headers(case)
    run = lua_filters[case["variant"]].run(headers)
    after = run.as_dict()
    assert _routing(after) == case["routing"]
    assert _others(after) == _others(_joined(headers))
    assert run.route_cache_cleared == (1 if case["changed"] else 0)
    assert bool(run.warnings()) == case["warn"], run.logs


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_python_model_agrees_with_the_table(case: dict[str, Any]) -> None:
    """Python: rewrite_headers gives the same routing headers and change flag as the Lua filter."""
    headers = _joined(request_headers(case))
    config = lua_config(shipped_lua(case["variant"]))
    after, changed = propagation.rewrite_headers(headers, config)
    assert _routing(after) == case["routing"]
    assert _others(after) == _others(headers)
    assert changed == case["changed"]


@pytest.mark.parametrize(
    ("old_envoy", "expected_cleared"),
    [(False, 1), (True, 0)],
    ids=["envoy-with-clearRouteCache", "envoy-before-1.34-without-it"],
)
def test_route_cache_cleared_when_available(
    old_envoy: bool, expected_cleared: int, lua_filters: dict[str, LuaFilter]
) -> None:
    run = lua_filters["sidecar"].run([("baggage", "service-router-echo-qa=echo-pr12.qa")], old_envoy=old_envoy)
    assert run.as_dict()["service-router-echo-qa"] == "echo-pr12.qa"
    assert run.route_cache_cleared == expected_cleared
    assert run.warnings() == []


@pytest.mark.parametrize("variant", ["sidecar", "gateway"])
def test_an_error_inside_the_filter_is_logged_not_raised(variant: str, lua_filters: dict[str, LuaFilter]) -> None:
    """Anything unexpected (here: headers() raising) ends in one warning, never an error to Envoy (a 5xx)."""
    run = lua_filters[variant].run([("baggage", "service-router-echo-qa=echo-pr12.qa")], broken=True)
    assert len(run.warnings()) == 1
    assert "header propagation failed" in run.warnings()[0]
    assert run.route_cache_cleared == 0


def test_state_does_not_leak_between_requests(lua_filters: dict[str, LuaFilter]) -> None:
    """One Lua state serves many requests on a worker: a request without context gets no headers."""
    lua = lua_filters["sidecar"]
    first = lua.run([("baggage", "service-router-echo-qa=echo-pr12.qa")])
    second = lua.run([("x-request-id", "2")])
    assert _routing(first.as_dict()) == {"service-router-echo-qa": "echo-pr12.qa"}
    assert second.as_dict() == {"x-request-id": "2"}
    assert second.route_cache_cleared == 0


def test_gateway_strips_every_client_header_in_one_pass(lua_filters: dict[str, LuaFilter]) -> None:
    """Stripping iterates to the end before removing (Envoy forbids changes during iteration)."""
    headers = [(f"service-router-svc{i}-qa", f"svc{i}-pr1.qa") for i in range(5)] + [("x-keep", "1")]
    run = lua_filters["gateway"].run(headers)
    assert run.headers == [("x-keep", "1")]
    assert run.warnings() == []


def test_lua_limits_match_python() -> None:
    """The schema's limits are written twice (Lua has no import); they must be equal."""
    source = shipped_lua("sidecar")
    expected = {
        "HEADER_PREFIX": f'"{propagation.HEADER_PREFIX}"',
        "CLAIM": f'"{propagation.JWT_CLAIM}"',
        "MAX_ENTRIES": str(propagation.MAX_ENTRIES),
        "MAX_LABEL_LENGTH": str(propagation.MAX_LABEL_LENGTH),
        "MAX_NAME_LENGTH": str(propagation.MAX_NAME_LENGTH),
        "MAX_TOKEN_BYTES": str(propagation.MAX_TOKEN_BYTES),
        "MAX_JSON_DEPTH": str(propagation.MAX_JSON_DEPTH),
        "MAX_BAGGAGE_BYTES": str(propagation.MAX_BAGGAGE_BYTES),
        "MAX_BAGGAGE_MEMBERS": str(propagation.MAX_BAGGAGE_MEMBERS),
    }
    for name, value in expected.items():
        assert f"\nlocal {name} = {value}\n" in source, name


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("baggage", "service-router-echo-qa\r\nx-forged: log line" + "x" * 200 + "=nope"),
        ("authorization", "Bearer a.eyJzZXJ2aWNlX3JvdXRlcnMiOnsiYVxuYiI6IngifX0.c"),
    ],
    ids=["baggage-key", "claim-name"],
)
def test_warnings_quote_client_text_safely(header: str, value: str, lua_filters: dict[str, LuaFilter]) -> None:
    """A warning names the bad entry, cut to 64 characters, without CR/LF that could forge log lines."""
    (warning,) = lua_filters["sidecar"].run([(header, value)]).warnings()
    assert "\n" not in warning and "\r" not in warning
    assert len(warning) < 160


_JSON_PIECES = [
    '{"service_routers": ',
    '{"service-router-echo-qa": "echo-pr12.qa"}',
    '"service-router-web-qa"',
    ': "web-pr3.qa"',
    ", ",
    "{",
    "}",
    "[",
    "]",
    '"',
    "\\u0041",
    "\\ud83d\\ude00",
    "\\",
    "1e5",
    "-0.5",
    "01",
    "null",
    "true",
    "NaN",
    " \n",
    "\t",
    "é",
    "\x01",
]
_BAGGAGE_PIECES = [
    "service-router-echo-qa=echo-pr12.qa",
    "service-router-web-qa",
    "=",
    "web-pr3.qa",
    "%2D",
    "%2",
    "%zz",
    ";ttl=1",
    ",",
    " ",
    "\t",
    "k=v",
    "Service-Router-x-qa=a.qa",
    "echo-pr12.prod",
]


_VALID_PAYLOAD = (
    '{"sub": "qa", "n": [1, -2.5e3, true, null], '
    '"service_routers": {"service-router-echo-qa": "echo-pr12.qa", "service-router-web-qa": "web-pr3.qa"}}'
)
_VALID_BAGGAGE = "k=v, service-router-echo-qa=echo-pr12.qa;ttl=1,service-router-web-qa=web%2Dpr3.qa"


def _mutate(rng: random.Random, text: str, pieces: list[str]) -> str:
    """Zero to three random edits: delete a span, insert a piece, or replace a span with a piece."""
    for _ in range(rng.randint(0, 3)):
        i = rng.randrange(len(text) + 1)
        j = min(len(text), i + rng.randint(0, 3))
        edit = rng.choice(["delete", "insert", "replace"])
        piece = "" if edit == "delete" else rng.choice(pieces)
        text = text[:i] + piece + text[j if edit != "insert" else i :]
    return text


def _fuzz_inputs(seed: int, count: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    inputs = []
    for _ in range(count):
        if rng.random() < 0.5:
            text = _mutate(rng, _VALID_PAYLOAD, _JSON_PIECES)
            segment = base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
            inputs.append(("authorization", f"Bearer e30.{segment}.c2ln"))
        else:
            inputs.append(("baggage", _mutate(rng, _VALID_BAGGAGE, _BAGGAGE_PIECES)))
    return inputs


@pytest.mark.parametrize("seed", range(4))
def test_lua_and_python_agree_on_random_inputs(seed: int, lua_filters: dict[str, LuaFilter]) -> None:
    """Beyond the table: random JSON and baggage fragments give the same overrides, or both reject."""
    parse = {"authorization": propagation.overrides_from_jwt, "baggage": propagation.overrides_from_baggage}
    for header, value in _fuzz_inputs(seed, 300):
        try:
            expected, rejected = parse[header](value), False
        except propagation.ClaimError:
            expected, rejected = {}, True
        run = lua_filters["sidecar"].run([(header, value)])
        assert (_routing(run.as_dict()), bool(run.warnings())) == (expected, rejected), (header, value, run.logs)
