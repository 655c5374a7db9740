"""The claim schema and each source parser of service_router.propagation, one function at a time."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from controller_common.contract import routing_header, routing_value
from service_router import propagation
from service_router.propagation import ClaimError

KEY = "any key of 32 bytes or more: never verified here"
ECHO = {"service-router-echo-qa": "echo-pr12.qa"}


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        ({}, {}),
        (ECHO, ECHO),
        (
            {routing_header("payments-api", "pay"): routing_value("payments-api-pr7", "pay"), **ECHO},
            {"service-router-payments-api-pay": "payments-api-pr7.pay", **ECHO},
        ),
        ({"service-router-a-b": "c.b"}, {"service-router-a-b": "c.b"}),
    ],
    ids=["empty", "one", "contract-helpers-two-namespaces", "shortest"],
)
def test_parse_claim_accepts(claim: object, expected: dict[str, str]) -> None:
    assert propagation.parse_claim(claim) == expected


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        ([["service-router-echo-qa", "echo-pr12.qa"]], "must be a JSON object"),
        ("service-router-echo-qa=echo-pr12.qa", "must be a JSON object"),
        (None, "must be a JSON object"),
        ({f"service-router-s{i}-qa": f"s{i}.qa" for i in range(33)}, "more than 32"),
        ({"service-router-echo-qa": 1}, "must map a string to a string"),
        ({"service-router-echo-qa": {"v": "echo-pr12.qa"}}, "must map a string to a string"),
        ({"echo-qa": "echo-pr12.qa"}, "not a service-router header name"),
        ({"service-router-" + "a" * 128: "a.a"}, "not a service-router header name"),
        ({"service-router-echo-qa": "echo-pr12"}, "is not <clone>.<namespace>"),
        ({"service-router-echo-qa": "-echo.qa"}, "is not <clone>.<namespace>"),
        ({"service-router-echo-qa": "echo-pr12.prod"}, "is not service-router-<origin>-prod"),
        ({"service-router--qa": "echo.qa"}, "is not service-router-<origin>-qa"),
        ({"service-router-qa": "echo.qa"}, "is not service-router-<origin>-qa"),
    ],
    ids=[
        "array",
        "string",
        "null",
        "too-many",
        "number-value",
        "nested-value",
        "foreign-name",
        "name-too-long",
        "value-without-namespace",
        "value-leading-hyphen",
        "namespace-mismatch",
        "empty-origin",
        "no-origin",
    ],
)
def test_parse_claim_rejects_with_a_reason(claim: object, message: str) -> None:
    with pytest.raises(ClaimError, match=message):
        propagation.parse_claim(claim)


def test_name_length_bound_is_two_labels_and_the_prefix() -> None:
    """142 = len("service-router-") + 63 + 1 + 63: the longest valid name, and no longer."""
    label = "a" * 63
    name = f"service-router-{label}-{label}"
    assert len(name) == propagation.MAX_NAME_LENGTH == 142
    assert propagation.parse_claim({name: f"{label}.{label}"}) == {name: f"{label}.{label}"}


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, {}),
        ("Basic dXNlcjpwYXNz", {}),
        ("Bearer opaque-token", {}),
        ("Bearer " + jwt.encode({"sub": "x"}, KEY, algorithm="HS256"), {}),
        ("Bearer " + jwt.encode({"service_routers": ECHO}, KEY, algorithm="HS256"), ECHO),
        ("BEARER  " + jwt.encode({"service_routers": ECHO}, KEY, algorithm="HS256") + " ", ECHO),
        ("Bearer " + jwt.encode({"service_routers": ECHO}, "other key entirely, also never verified"), ECHO),
    ],
    ids=["absent", "basic", "opaque", "no-claim", "claim", "scheme-case-and-spaces", "any-signature"],
)
def test_overrides_from_jwt(authorization: str | None, expected: dict[str, str]) -> None:
    assert propagation.overrides_from_jwt(authorization) == expected


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer a.!!!.c",
        "Bearer a.abcde.c",
        f"Bearer a.{_b64([{'service_routers': {}}])}.c",
        f"Bearer a.{_b64({'service_routers': [1]})}.c",
        "Bearer a." + base64.urlsafe_b64encode(b'{"x": NaN, "service_routers": {}}').decode() + ".c",
        "Bearer a." + _b64({"pad": "x" * 8192}) + ".c",
    ],
    ids=["bad-base64-char", "bad-base64-length", "not-an-object", "claim-array", "nan", "too-long"],
)
def test_overrides_from_jwt_rejects_malformed(authorization: str) -> None:
    with pytest.raises(ClaimError):
        propagation.overrides_from_jwt(authorization)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, {}),
        (_b64({"iss": "x"}), {}),
        (_b64({"service_routers": ECHO}), ECHO),
        (base64.urlsafe_b64encode(json.dumps({"service_routers": ECHO}).encode()).decode(), ECHO),
    ],
    ids=["absent", "no-claim", "claim", "padded"],
)
def test_overrides_from_payload_header(header: str | None, expected: dict[str, str]) -> None:
    assert propagation.overrides_from_payload_header(header) == expected


@pytest.mark.parametrize(
    ("baggage", "expected"),
    [
        (None, {}),
        ("", {}),
        ("userId=alice", {}),
        ("service-router-echo-qa=echo-pr12.qa", ECHO),
        ("k=v;p, service-router-echo-qa = echo%2Dpr12.qa ;ttl=3", ECHO),
    ],
    ids=["absent", "empty", "foreign-only", "one", "ows-properties-percent"],
)
def test_overrides_from_baggage(baggage: str | None, expected: dict[str, str]) -> None:
    assert propagation.overrides_from_baggage(baggage) == expected


@pytest.mark.parametrize(
    ("baggage", "message"),
    [
        (",".join(f"k{i}=v" for i in range(65)), "65 members"),
        ("k=" + "v" * 8191, "longer than 8192"),
        ("service-router-echo-qa", "no valid value"),
        ("service-router-echo-qa=%zz", "no valid value"),
        ("service-router-echo-qa=echo.prod", "is not service-router-<origin>-prod"),
    ],
    ids=["65-members", "8193-bytes", "no-value", "bad-percent", "invalid-entry"],
)
def test_overrides_from_baggage_rejects(baggage: str, message: str) -> None:
    with pytest.raises(ClaimError, match=message):
        propagation.overrides_from_baggage(baggage)


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ({}, {}),
        ({"baggage": {"h-a": "b"}}, {"h-a": "b"}),
        ({"baggage": {"h-a": "b"}, "bearer": {"h-a": "j"}}, {"h-a": "j"}),
        ({"baggage": {"h-a": "b"}, "bearer": {"h-a": "j"}, "payload": {"h-a": "p"}}, {"h-a": "p"}),
        ({"baggage": {"h-a": "b"}, "payload": {"h-a": "p"}}, {"h-a": "p"}),
        (
            {"baggage": {"h-a": "b"}, "bearer": {"h-c": "j"}, "payload": {"h-d": "p"}},
            {"h-a": "b", "h-c": "j", "h-d": "p"},
        ),
    ],
    ids=["none", "baggage", "bearer-over-baggage", "payload-over-all", "payload-over-baggage", "disjoint-combine"],
)
def test_merge_overrides_precedence(layers: dict[str, dict[str, str]], expected: dict[str, str]) -> None:
    assert propagation.merge_overrides(**layers) == expected


def test_headers_for_sorts_and_validates() -> None:
    overrides = {"service-router-web-qa": "web-pr3.qa", **ECHO}
    assert list(propagation.headers_for(overrides)) == ["service-router-echo-qa", "service-router-web-qa"]
    with pytest.raises(ClaimError):
        propagation.headers_for({"service-router-echo-qa": "echo"})
