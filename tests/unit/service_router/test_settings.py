"""Service-router settings: the revert knobs are Go durations or seconds, like every other duration flag."""

from __future__ import annotations

import pytest

from service_router.settings import parse_settings


def test_revert_window_and_backoff_take_go_durations() -> None:
    settings = parse_settings(["--revert-window=10m", "--revert-backoff=1h30m", "--resync-period=30s"], environ={})
    assert settings.reverts.window_seconds == 600.0
    assert settings.reverts.backoff_seconds == 5400.0
    assert settings.process.resync_period_seconds == 30.0


def test_plain_seconds_still_work() -> None:
    settings = parse_settings(["--revert-window", "600", "--revert-backoff", "0.5"], environ={})
    assert (settings.reverts.window_seconds, settings.reverts.backoff_seconds) == (600.0, 0.5)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--revert-window=-10m"], "argument --revert-window: "),
        (["--revert-backoff=later"], "argument --revert-backoff: "),
        (["--revert-window=0s"], "--revert-window and --revert-backoff must be positive"),
        (["--leader-elect", "--leader-elect-lease-duration=15x"], "argument --leader-elect-lease-duration: "),
    ],
    ids=["negative", "garbage", "zero", "lease-garbage"],
)
def test_bad_durations_are_usage_errors_naming_the_flag(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_settings(argv, environ={})
    assert exited.value.code == 2
    assert named in capsys.readouterr().err


def test_context_selects_the_kubeconfig_context() -> None:
    assert parse_settings(["--context", "qa"], environ={}).process.context == "qa"
