"""Replicator settings: GitHub credentials, Enterprise hosts, feedback flags, secrets never logged."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller_common.startup import EXIT_CREDENTIALS_FILE, StartupError
from replicator.settings import parse_settings

PEM = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"


def test_github_app_from_flags_or_environment_and_redacted(tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    key.write_text(PEM)
    settings = parse_settings(["--github-app-id", "42", "--github-app-private-key-file", str(key)], environ={})
    assert settings.github_app_id == 42 and settings.github_app_private_key == PEM.strip()
    assert settings.redacted()["github_app_private_key"] == "<set>"
    from_env = parse_settings([], environ={"GITHUB_APP_ID": "7", "GITHUB_APP_PRIVATE_KEY_FILE": str(key)})
    assert from_env.github_app_id == 7
    assert "PRIVATE KEY" not in repr(settings) and "PRIVATE KEY" not in str(settings.redacted())


@pytest.mark.parametrize(
    "argv",
    [
        ["--github-app-id", "42"],
        ["--github-app-id", "forty-two", "--github-app-private-key-file", "{key}"],
        ["--github-enterprise-api-url", "ghe.example.com"],
        ["--github-enterprise-api-url", "ghe.example.com=ftp://x"],
    ],
    ids=["app-without-key", "app-id-not-a-number", "mapping-without-url", "mapping-not-http"],
)
def test_bad_github_settings_are_usage_errors(tmp_path: Path, argv: list[str]) -> None:
    key, not_a_key = tmp_path / "key.pem", tmp_path / "token.txt"
    key.write_text(PEM)
    not_a_key.write_text("ghp_abc")
    argv = [a.format(key=key, not_a_key=not_a_key) for a in argv]
    with pytest.raises(SystemExit) as exited:
        parse_settings(argv, environ={})
    assert exited.value.code == 2


def test_enterprise_hosts_and_feedback_flags() -> None:
    settings = parse_settings(
        [
            "--github-enterprise-api-url",
            "GHE.example.com=https://ghe.example.com/api/v3/",
            "--github-deployments",
            "--github-pr-comment",
            "--github-write-interval",
            "0.5",
            "--github-read-interval",
            "0",
        ],
        environ={"GITHUB_TOKEN": "t"},
    )
    assert settings.github_enterprise_api_urls == {"ghe.example.com": "https://ghe.example.com/api/v3"}
    assert settings.github_deployments and settings.github_pr_comment
    assert settings.github_write_interval_seconds == 0.5 and settings.github_read_interval_seconds == 0
    assert settings.redacted()["github_token"] == "<set>"


@pytest.mark.parametrize(
    ("argv", "environ", "seconds"),
    [
        (["--poll-interval=2m"], {}, 120.0),
        (["--poll-interval", "90"], {}, 90.0),
        ([], {"POLL_INTERVAL_SECONDS": "1m30s"}, 90.0),
        ([], {"POLL_INTERVAL_SECONDS": "0.3"}, 0.3),
        (["--poll-interval=5m"], {"POLL_INTERVAL_SECONDS": "10"}, 300.0),
        ([], {}, 60.0),
    ],
    ids=["flag-go-duration", "flag-seconds", "env-go-duration", "env-seconds", "flag-beats-env", "default"],
)
def test_poll_interval_is_a_go_duration_or_seconds(argv: list[str], environ: dict[str, str], seconds: float) -> None:
    assert parse_settings(argv, environ=environ).poll_interval_seconds == seconds


def test_github_pacing_flags_are_durations() -> None:
    settings = parse_settings(["--github-write-interval=1.5s", "--github-read-interval=250ms"], environ={})
    assert settings.github_write_interval_seconds == 1.5
    assert settings.github_read_interval_seconds == 0.25


@pytest.mark.parametrize(
    ("argv", "environ", "named"),
    [
        (["--poll-interval=-1m"], {}, "argument --poll-interval: "),
        (["--poll-interval=soon"], {}, "argument --poll-interval: "),
        (["--poll-interval=0s"], {}, "--poll-interval must be positive"),
        (["--github-read-interval=fast"], {}, "argument --github-read-interval: "),
        ([], {"POLL_INTERVAL_SECONDS": "2 minutes"}, "POLL_INTERVAL_SECONDS: "),
    ],
    ids=["negative", "garbage", "zero", "pacing-garbage", "env-garbage"],
)
def test_bad_durations_are_usage_errors_naming_the_flag(
    argv: list[str], environ: dict[str, str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_settings(argv, environ=environ)
    assert exited.value.code == 2
    assert named in capsys.readouterr().err


def test_context_is_passed_on_with_the_kubeconfig() -> None:
    settings = parse_settings(["--kubeconfig=/etc/kube/config", "--context=staging"], environ={})
    assert (settings.process.kubeconfig, settings.process.context) == ("/etc/kube/config", "staging")


@pytest.mark.parametrize(
    ("argv", "environ", "flag"),
    [
        (["--github-token-file", "{missing}"], {}, "--github-token-file"),
        (["--github-token-file", "{folder}"], {"GITHUB_TOKEN": "ignored"}, "--github-token-file"),
        (["--webhook-secret-file", "{missing}"], {}, "--webhook-secret-file"),
        (["--github-app-id", "42", "--github-app-private-key-file", "{missing}"], {}, "--github-app-private-key-file"),
        ([], {"GITHUB_APP_ID": "42", "GITHUB_APP_PRIVATE_KEY_FILE": "{folder}"}, "--github-app-private-key-file"),
    ],
    ids=["token-missing", "token-folder", "webhook-secret-missing", "app-key-missing", "app-key-from-env-folder"],
)
def test_an_unreadable_credentials_file_is_a_startup_error_naming_flag_and_file(
    tmp_path: Path, argv: list[str], environ: dict[str, str], flag: str
) -> None:
    paths = {"missing": str(tmp_path / "missing"), "folder": str(tmp_path)}
    argv = [a.format(**paths) for a in argv]
    environ = {k: v.format(**paths) for k, v in environ.items()}
    with pytest.raises(StartupError) as raised:
        parse_settings(argv, environ=environ)
    assert raised.value.exit_code == EXIT_CREDENTIALS_FILE
    assert raised.value.message.startswith(f"{flag} {tmp_path}")
    assert "fix the path" in raised.value.message


def test_a_key_file_without_a_pem_key_is_a_startup_error(tmp_path: Path) -> None:
    not_a_key = tmp_path / "token.txt"
    not_a_key.write_text("ghp_abc")
    with pytest.raises(StartupError) as raised:
        parse_settings(["--github-app-id", "42", "--github-app-private-key-file", str(not_a_key)], environ={})
    assert raised.value.exit_code == EXIT_CREDENTIALS_FILE
    assert raised.value.message.startswith(f"--github-app-private-key-file {not_a_key}: holds no PEM private key")
