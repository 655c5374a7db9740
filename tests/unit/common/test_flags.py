"""Process flags: Go durations (as controller-runtime's flags take them) or plain seconds, and ``--context``."""

from __future__ import annotations

import argparse

import pytest

from controller_common.flags import add_process_flags, format_duration, parse_duration, process_settings


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("2m", 120.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("1h2m3s4ms", 3723.004),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),
        ("250\u03bcs", 0.00025),
        ("1500000000ns", 1.5),
        (".5s", 0.5),
        ("5.s", 5.0),
        ("+15s", 15.0),
        ("0", 0.0),
        ("0s", 0.0),
        ("600", 600.0),
        ("0.3", 0.3),
        (" 15s ", 15.0),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else None,
)
def test_go_durations_and_plain_seconds_are_accepted(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("-1s", "negative"),
        ("-5", "negative"),
        ("", "empty"),
        ("s", "not a duration"),
        ("1d", "not a duration"),
        ("1.5.3s", "not a duration"),
        ("1h-30m", "not a duration"),
        ("1h 30m", "not a duration"),
        ("1H", "not a duration"),
        ("ten", "not a duration"),
        ("inf", "not a duration"),
        ("nan", "not a duration"),
        (".", "not a duration"),
    ],
    ids=repr,
)
def test_negative_or_malformed_durations_are_refused_with_examples(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as raised:
        parse_duration(text)
    assert "90s" in str(raised.value) or reason == "negative"


def parse(argv: list[str], env: dict[str, str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="controller")
    add_process_flags(parser)
    return parser, parser.parse_args(argv)


DURATION_FLAGS = [
    ("--resync-period", "resync_period_seconds"),
    ("--cache-sync-timeout", "cache_sync_timeout_seconds"),
]


@pytest.mark.parametrize(("flag", "field"), DURATION_FLAGS)
def test_every_duration_flag_takes_a_go_duration(flag: str, field: str) -> None:
    parser, args = parse([f"{flag}=1h30m"])
    assert getattr(process_settings(parser, args, {}, name="c"), field) == 5400.0


def test_leader_election_durations_are_go_durations_as_in_controller_runtime() -> None:
    parser, args = parse(
        [
            "--leader-elect",
            "--leader-elect-lease-duration=15s",
            "--leader-elect-renew-deadline=10s",
            "--leader-elect-retry-period=500ms",
        ]
    )
    election = process_settings(parser, args, {"POD_NAMESPACE": "ns"}, name="c").leader_election
    assert election is not None
    assert (election.lease_duration_seconds, election.renew_deadline_seconds, election.retry_period_seconds) == (
        15.0,
        10.0,
        0.5,
    )


@pytest.mark.parametrize(
    "flag",
    [
        "--resync-period",
        "--cache-sync-timeout",
        "--leader-elect-lease-duration",
        "--leader-elect-renew-deadline",
        "--leader-elect-retry-period",
    ],
)
@pytest.mark.parametrize("value", ["-1s", "2x", "1h30"])
def test_a_bad_duration_is_a_usage_error_naming_the_flag(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse([f"{flag}={value}"])
    assert exited.value.code == 2
    assert f"argument {flag}: " in capsys.readouterr().err


def test_context_selects_a_kubeconfig_context() -> None:
    parser, args = parse(["--kubeconfig", "/k", "--context", "staging"])
    settings = process_settings(parser, args, {}, name="c")
    assert (settings.kubeconfig, settings.context) == ("/k", "staging")
    parser, args = parse([])
    assert process_settings(parser, args, {}, name="c").context is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(600.0, "10m"), (15.0, "15s"), (0.25, "250ms"), (3600.0, "1h"), (90.0, "90s"), (5400.0, "90m")],
)
def test_defaults_are_written_as_durations_in_help(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds
