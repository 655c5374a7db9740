"""The replicator's configuration: flags override environment, validated once in ``main()``.

Everything downstream receives a frozen :class:`Settings`; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from controller_common.flags import (
    DURATION_EXAMPLES,
    ProcessSettings,
    add_process_flags,
    duration,
    parse_duration,
    process_settings,
)
from controller_common.startup import EXIT_CREDENTIALS_FILE, StartupError, read_credentials_file
from replicator import __version__
from replicator.github_hosts import DEFAULT_GITHUB_API_URL


@dataclass(frozen=True)
class Settings:
    process: ProcessSettings
    github_api_url: str
    github_token: str | None = field(repr=False)
    poll_interval_seconds: float
    webhook_bind_address: str = "0"
    webhook_path: str = "/webhook"
    webhook_secret: bytes | None = field(default=None, repr=False)
    github_app_id: int | None = None
    github_app_private_key: str | None = field(default=None, repr=False)
    github_enterprise_api_urls: dict[str, str] = field(default_factory=dict)
    """Enterprise host -> REST base URL; repositories on hosts not listed (nor github.com, nor the host
    of the API URL) are refused (:mod:`replicator.github_hosts`)."""
    github_deployments: bool = False
    github_pr_comment: bool = False
    github_write_interval_seconds: float = 1.0
    github_read_interval_seconds: float = 0.0

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as logged at start: secrets replaced by whether they are set."""
        values = asdict(self)
        values["github_token"] = "<set>" if self.github_token else "<unset>"
        values["webhook_secret"] = "<set>" if self.webhook_secret else "<unset>"
        values["github_app_private_key"] = "<set>" if self.github_app_private_key else "<unset>"
        return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="replicator",
        description="Clone annotated Deployments and their Services for every open GitHub pull request.",
    )
    parser.add_argument("--version", action="version", version=f"replicator {__version__}")
    add_process_flags(parser)
    parser.add_argument(
        "--github-api-url",
        help=f"GitHub REST base URL (default: $GITHUB_API_URL, else {DEFAULT_GITHUB_API_URL})",
    )
    parser.add_argument("--github-token-file", help="file holding the GitHub token (default: $GITHUB_TOKEN)")
    parser.add_argument(
        "--github-app-id",
        help="authenticate as this GitHub App instead of a token (default: $GITHUB_APP_ID)",
    )
    parser.add_argument(
        "--github-app-private-key-file",
        help="PEM private key of the GitHub App (default: $GITHUB_APP_PRIVATE_KEY_FILE)",
    )
    parser.add_argument(
        "--github-enterprise-api-url",
        action="append",
        default=[],
        metavar="HOST=URL",
        help="REST base URL of a GitHub Enterprise host (repeatable); default https://<host>/api/v3",
    )
    parser.add_argument(
        "--github-deployments",
        action="store_true",
        help="report each environment as a GitHub deployment (pr-<N>/<origin>) with its rollout status",
    )
    parser.add_argument(
        "--github-pr-comment",
        action="store_true",
        help="keep one comment per pull request listing its environments and how to route to them",
    )
    parser.add_argument(
        "--github-write-interval",
        type=duration,
        default=1.0,
        help="between two GitHub writes (default 1s: GitHub asks for at least 1s between content-creating requests)",
    )
    parser.add_argument(
        "--github-read-interval",
        type=duration,
        default=0.0,
        help="a floor on the seconds between two GitHub reads (default 0: reads follow GitHub's rate-limit "
        "headers and its secondary limit, 600 a minute with bursts of 60)",
    )
    parser.add_argument(
        "--poll-interval",
        type=duration,
        default=None,
        help=f"between pull-request polls per repository ({DURATION_EXAMPLES}; "
        "default: $POLL_INTERVAL_SECONDS, else 1m)",
    )
    parser.add_argument(
        "--webhook-bind-address",
        default="0",
        help='address of the GitHub webhook receiver, e.g. ":9443" (default "0": disabled, polling only)',
    )
    parser.add_argument("--webhook-path", default="/webhook", help="URL path of the webhook receiver")
    parser.add_argument(
        "--webhook-secret-file", help="file holding the webhook secret (default: $GITHUB_WEBHOOK_SECRET)"
    )
    return parser


def _read_secret(flag: str, path: str | None, fallback: str | None) -> str | None:
    """The file's text (a StartupError naming the flag if it cannot be read), else ``fallback``."""
    if not path:
        return fallback or None
    return read_credentials_file(flag, path) or None


def parse_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build and validate the settings; exits with a usage error (status 2) on bad input.

    A token, key or secret file that cannot be read raises :class:`StartupError` (exit code 6).
    """
    env = os.environ if environ is None else environ
    parser = build_parser()
    args = parser.parse_args(argv)
    token = _read_secret("--github-token-file", args.github_token_file, env.get("GITHUB_TOKEN"))
    secret = _read_secret("--webhook-secret-file", args.webhook_secret_file, env.get("GITHUB_WEBHOOK_SECRET"))
    if args.webhook_bind_address != "0" and not secret:
        parser.error("the webhook receiver requires a secret (--webhook-secret-file or $GITHUB_WEBHOOK_SECRET)")
    try:
        poll = (
            args.poll_interval
            if args.poll_interval is not None
            else parse_duration(env.get("POLL_INTERVAL_SECONDS", "60"))
        )
    except ValueError as exc:
        parser.error(f"POLL_INTERVAL_SECONDS: {exc}")
    if poll <= 0:
        parser.error("--poll-interval must be positive")
    app_id_text = args.github_app_id or env.get("GITHUB_APP_ID")
    key_file = args.github_app_private_key_file or env.get("GITHUB_APP_PRIVATE_KEY_FILE")
    app_id: int | None = None
    private_key: str | None = None
    if app_id_text or key_file:
        if not (app_id_text and key_file):
            parser.error("a GitHub App needs both --github-app-id and --github-app-private-key-file")
        if not str(app_id_text).isdigit():
            parser.error("--github-app-id must be a number")
        app_id = int(str(app_id_text))
        private_key = _read_secret("--github-app-private-key-file", key_file, None)
        if not private_key or "PRIVATE KEY" not in private_key:
            raise StartupError(
                EXIT_CREDENTIALS_FILE,
                f"--github-app-private-key-file {key_file}: holds no PEM private key; point it at the .pem "
                "file GitHub generated for the App",
            )
    enterprise: dict[str, str] = {}
    for item in args.github_enterprise_api_url:
        host, sep, url = item.partition("=")
        if not sep or not host.strip() or not url.strip().startswith(("http://", "https://")):
            parser.error(f"--github-enterprise-api-url {item!r}: write HOST=https://HOST/api/v3")
        enterprise[host.strip().lower()] = url.strip().rstrip("/")
    return Settings(
        process=process_settings(parser, args, env, name="replicator"),
        github_api_url=(args.github_api_url or env.get("GITHUB_API_URL") or DEFAULT_GITHUB_API_URL).rstrip("/"),
        github_token=token,
        poll_interval_seconds=poll,
        webhook_bind_address=args.webhook_bind_address,
        webhook_path=args.webhook_path,
        webhook_secret=secret.encode() if secret else None,
        github_app_id=app_id,
        github_app_private_key=private_key,
        github_enterprise_api_urls=enterprise,
        github_deployments=args.github_deployments,
        github_pr_comment=args.github_pr_comment,
        github_write_interval_seconds=max(0.0, args.github_write_interval),
        github_read_interval_seconds=max(0.0, args.github_read_interval),
    )
