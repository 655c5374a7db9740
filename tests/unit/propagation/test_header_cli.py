"""``service-router header`` and the shared instruction text: what it prints is what the filter accepts."""

from __future__ import annotations

import argparse
import json
import shlex

import jwt
import pytest
from unit.propagation.lua_harness import LuaFilter

from controller_common import headers
from service_router import header_cli, propagation

KEY = "any key of 32 bytes or more: never verified here"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = header_cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _section(text: str, title: str) -> list[str]:
    """The indented lines under the heading that starts with ``title``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    body = []
    for line in lines[start + 2 :]:
        if not line.startswith("    "):
            break
        body.append(line.strip())
    return body


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["header", "echo-pr12", "-n", "qa"], {"service-router-echo-qa": "echo-pr12.qa"}),
        (["header", "echo-pr12"], {"service-router-echo-default": "echo-pr12.default"}),
        (
            ["header", "echo-pr12", "payments-api-pr7", "--namespace", "qa"],
            {"service-router-echo-qa": "echo-pr12.qa", "service-router-payments-api-qa": "payments-api-pr7.qa"},
        ),
        (
            ["header", "echo-1a2b3c4d-pr12", "--origin", "echo-with-a-very-long-name", "-n", "qa"],
            {"service-router-echo-with-a-very-long-name-qa": "echo-1a2b3c4d-pr12.qa"},
        ),
        (
            ["header", "a-pr1", "b-pr2", "--origin", "alpha", "--origin", "beta", "-n", "qa"],
            {"service-router-alpha-qa": "a-pr1.qa", "service-router-beta-qa": "b-pr2.qa"},
        ),
    ],
    ids=["one-clone", "default-namespace", "several-clones", "hashed-clone-with-origin", "origin-per-clone"],
)
def test_header_prints_header_claim_and_baggage(
    argv: list[str], expected: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert (code, err) == (0, "")
    assert _section(out, "Headers") == [f"{name}: {value}" for name, value in expected.items()]
    (claim_line,) = _section(out, "JWT claim")
    assert propagation.parse_claim(json.loads(claim_line)["service_routers"]) == expected
    (baggage_line,) = _section(out, "Baggage")
    assert propagation.overrides_from_baggage(baggage_line.removeprefix("baggage: ")) == expected


@pytest.mark.parametrize(
    ("argv", "expected_url"),
    [
        (["header", "echo-pr12", "-n", "qa"], "http://echo.qa/"),
        (
            ["header", "echo-pr12", "-n", "qa", "--url", "https://api.example.com/v1/x?a=1&b=2"],
            "https://api.example.com/v1/x?a=1&b=2",
        ),
    ],
    ids=["default-url", "given-url-with-shell-characters"],
)
def test_curl_example_is_one_valid_shell_command(
    argv: list[str], expected_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = _run(argv, capsys)
    (command,) = _section(out, "Example")
    words = shlex.split(command)
    assert words[0] == "curl"
    assert words[-1] == expected_url
    sent = [words[i + 1] for i, word in enumerate(words) if word == "-H"]
    assert sent == ["service-router-echo-qa: echo-pr12.qa", "baggage: service-router-echo-qa=echo-pr12.qa"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["header", "echo"], "no -pr<N> suffix: pass --origin"),
        (["header", "a-pr1", "b-pr2", "--origin", "a"], "give one per clone or none"),
        (["header", "echo_svc-pr1"], "is not <clone>.<namespace>"),
        (["header", "echo-pr1", "-n", "q.a"], "is not <clone>.<namespace>"),
    ],
    ids=["no-suffix", "origin-count", "underscore", "dotted-namespace"],
)
def test_header_rejects_what_the_filter_would(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert out == ""
    assert message in err


def test_add_header_command_registers_run_header() -> None:
    parser = argparse.ArgumentParser(prog="service-router")
    header_cli.add_header_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["header", "echo-pr3", "-n", "qa"])
    assert args.handler is header_cli.run_header
    assert (args.clones, args.namespace, args.origin, args.url) == (["echo-pr3"], "qa", None, None)


@pytest.mark.parametrize("form", ["claim", "baggage"])
def test_printed_forms_route_through_the_lua_filter(form: str, lua_filters: dict[str, LuaFilter]) -> None:
    """The claim minted into a JWT, or the baggage sent as is, makes the sidecar set the printed headers."""
    entries = [("echo", "echo-pr12", "qa"), ("payments-api", "payments-api-pr7", "payments")]
    if form == "claim":
        payload = json.loads(headers.claim_json(entries))
        request = [("authorization", "Bearer " + jwt.encode(payload, KEY, algorithm="HS256"))]
    else:
        request = [("baggage", headers.baggage_value(entries))]
    after = lua_filters["sidecar"].run(request).as_dict()
    assert {k: v for k, v in after.items() if k.startswith("service-router-")} == headers.routing_headers(entries)


@pytest.mark.parametrize(
    ("clone", "origin"),
    [("echo-pr12", "echo"), ("payments-api-pr7", "payments-api"), ("echo", None), ("-pr1", None), ("echo-pr", None)],
    ids=["simple", "hyphenated", "no-suffix", "nothing-before", "no-number"],
)
def test_origin_from_clone(clone: str, origin: str | None) -> None:
    assert headers.origin_from_clone(clone) == origin


@pytest.mark.parametrize(
    ("count", "cut"),
    [(1, False), (3, True)],
    ids=["fits", "cut-to-140"],
)
def test_deployment_description_fits_github(count: int, cut: bool) -> None:
    entries = [(f"service-number-{i}", f"service-number-{i}-pr12", "qa") for i in range(count)]
    text = headers.deployment_description(entries)
    assert len(text) <= headers.DEPLOYMENT_DESCRIPTION_LIMIT
    assert text.endswith("…") == cut
    assert "service-router-service-number-0-qa: service-number-0-pr12.qa" in text


def test_header_instructions_needs_an_entry() -> None:
    with pytest.raises(ValueError, match="no clones"):
        headers.header_instructions([], url=None)
