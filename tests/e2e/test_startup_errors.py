"""A platform engineer's configuration mistakes, made with the real console scripts (issue 14 item 5).

Each mistake ends the process before any worker runs with its own exit code and one JSON log line
(stdout is not a terminal) that names the flag or file and the fix — never a Python traceback.
GitHub being unreachable or failing at start-up is not a mistake: a warning, and the replicator
runs on (polling retries).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from controller_common import startup
from e2e_support import BIN_DIR, ControllerProcess, wait_until
from world import World, free_port

pytestmark = pytest.mark.e2e

CONTROLLERS = ("replicator", "service-router")
QUIET_PORTS = ["--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"]
# Whatever the developer's shell holds must not decide these tests.
CLEARED = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "GITHUB_TOKEN", "GITHUB_API_URL")
CLEARED += ("GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY_FILE", "GITHUB_WEBHOOK_SECRET", "POLL_INTERVAL_SECONDS")


@dataclass
class Exit:
    code: int
    output: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.strip()]

    def startup_error(self) -> dict[str, Any]:
        """The one ``cannot start`` record; the output holds no traceback."""
        assert "Traceback" not in self.output, self.output
        errors = [json.loads(line) for line in self.lines if '"cannot start"' in line]
        assert len(errors) == 1, self.output
        (record,) = errors
        assert record["level"] == "error" and record["exit_code"] == self.code
        assert "\n" not in record["error"]
        return record


def run(binary: str, args: Sequence[str], *, env: dict[str, str], home: Path, timeout: float = 60) -> Exit:
    """Run the console script to its end (the deadline is the timeout, not a sleep)."""
    full_env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    full_env.update({"HOME": str(home), "PYTHONUNBUFFERED": "1", **env})
    done = subprocess.run(
        [str(BIN_DIR / binary), *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Exit(done.returncode, done.stdout)


@pytest.fixture(params=CONTROLLERS)
def controller(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home without ~/.kube: nothing falls back to the developer's own cluster."""
    path = tmp_path / "home"
    path.mkdir()
    return path


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: dev, context: {cluster: c, user: u}}]
current-context: dev
"""


# --- both controllers ----------------------------------------------------------------------------


def test_no_kubeconfig_and_not_in_a_cluster(controller: str, home: Path) -> None:
    result = run(controller, QUIET_PORTS, env={}, home=home)
    assert result.code == startup.EXIT_KUBECONFIG == 3
    error = result.startup_error()["error"]
    assert error.startswith("no Kubernetes cluster to talk to") and "--kubeconfig" in error


def test_a_kubeconfig_that_is_not_there(controller: str, home: Path) -> None:
    result = run(controller, [*QUIET_PORTS, "--kubeconfig", str(home / "kubeconfig")], env={}, home=home)
    assert result.code == startup.EXIT_KUBECONFIG
    assert result.startup_error()["error"].startswith(f"--kubeconfig {home / 'kubeconfig'}: no such file")


def test_a_context_the_kubeconfig_does_not_have(controller: str, home: Path) -> None:
    kubeconfig = home / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    result = run(controller, [*QUIET_PORTS, "--context", "prod"], env={"KUBECONFIG": str(kubeconfig)}, home=home)
    assert result.code == startup.EXIT_KUBECONFIG
    error = result.startup_error()["error"]
    assert error.startswith(f"$KUBECONFIG {kubeconfig} (--context=prod): ") and "get-contexts" in error


@pytest.mark.parametrize(
    ("flag", "address"),
    [("--metrics-bind-address", "8080"), ("--health-probe-bind-address", "localhost:http")],
    ids=["no-colon", "named-port"],
)
def test_an_invalid_bind_address(controller: str, home: Path, flag: str, address: str) -> None:
    args = [*QUIET_PORTS, flag, address]  # the last value of a flag wins
    result = run(controller, args, env={"KUBECONFIG": str(home / "unused")}, home=home)
    assert result.code == startup.EXIT_BIND_ADDRESS == 4
    assert result.startup_error()["error"].startswith(f"{flag}={address!r}: ")


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_a_port_already_in_use(controller: str, home: Path, taken_port: int) -> None:
    args = [*QUIET_PORTS, "--metrics-bind-address", f"127.0.0.1:{taken_port}"]
    result = run(controller, args, env={"KUBECONFIG": str(home / "unused")}, home=home)
    assert result.code == startup.EXIT_CANNOT_LISTEN == 5
    error = result.startup_error()["error"]
    assert error.startswith(f"--metrics-bind-address='127.0.0.1:{taken_port}': port {taken_port} is already in use")


# --- the replicator's files and GitHub credentials ------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "extra"),
    [
        ("--github-token-file", []),
        ("--webhook-secret-file", ["--webhook-bind-address", "127.0.0.1:0"]),
        ("--github-app-private-key-file", ["--github-app-id", "42"]),
    ],
)
def test_an_unreadable_credentials_file(home: Path, flag: str, extra: list[str]) -> None:
    missing = home / "secret" / "token"
    result = run("replicator", [*QUIET_PORTS, *extra, flag, str(missing)], env={}, home=home)
    assert result.code == startup.EXIT_CREDENTIALS_FILE == 6
    error = result.startup_error()["error"]
    assert error.startswith(f"{flag} {missing}: cannot read it (No such file or directory); fix the path")


def test_an_app_key_file_without_a_key(home: Path) -> None:
    key = home / "app.pem"
    key.write_text("ghp_not_a_key\n")
    args = [*QUIET_PORTS, "--github-app-id", "42", "--github-app-private-key-file", str(key)]
    result = run("replicator", args, env={}, home=home)
    assert result.code == startup.EXIT_CREDENTIALS_FILE
    assert "holds no PEM private key" in result.startup_error()["error"]


def test_a_token_github_rejects_stops_the_start_before_any_worker(world: World, home: Path) -> None:
    world.github.clear_request_log()
    env = {**world.env, "GITHUB_TOKEN": "revoked-token"}
    result = run("replicator", QUIET_PORTS, env=env, home=home)
    assert result.code == startup.EXIT_GITHUB_CREDENTIALS == 7
    error = result.startup_error()["error"]
    assert error.startswith("--github-token-file / $GITHUB_TOKEN: GitHub rejected the token")
    assert "Bad credentials" in error
    assert "caches synced" not in result.output
    assert [(r.method, r.path, r.status) for r in list(world.github.request_log)] == [("GET", "/user", 401)]


def test_a_github_app_github_does_not_know(world: World, home: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_file = home / "app.pem"
    key_file.write_bytes(pem)
    env = {**world.env, "GITHUB_TOKEN": ""}
    args = [*QUIET_PORTS, "--github-app-id", "4242", "--github-app-private-key-file", str(key_file)]
    result = run("replicator", args, env=env, home=home)
    assert result.code == startup.EXIT_GITHUB_CREDENTIALS
    error = result.startup_error()["error"]
    assert error.startswith("--github-app-id=4242 / --github-app-private-key-file: GitHub rejected the App")


# --- GitHub trouble is not a configuration mistake ------------------------------------------------


def _runs_on_with_a_warning(world: World, env: dict[str, str]) -> str:
    port = free_port()
    args = ["--metrics-bind-address", f"127.0.0.1:{port}", "--health-probe-bind-address", f"127.0.0.1:{port}"]
    replicator = ControllerProcess("replicator", args, env=env, log_dir=world.workdir)
    world.controllers.append(replicator)

    def ready() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(lambda: ready() or not replicator.running, timeout=30, message="replicator ready")
    assert replicator.running, replicator.logs()
    logs = replicator.logs()
    assert "github credentials not checked; polling retries" in logs and "Traceback" not in logs
    assert replicator.stop() == 0
    return logs


def test_github_unreachable_at_start_is_only_a_warning(world: World) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # nothing listens once the socket is closed
    _runs_on_with_a_warning(world, {**world.env, "GITHUB_API_URL": f"http://127.0.0.1:{closed}/api/v3"})


def test_github_failing_at_start_is_only_a_warning(world: World) -> None:
    world.github.faults.inject(method="GET", path_regex=r"^/user$", status=502)
    logs = _runs_on_with_a_warning(world, world.env)
    assert '"status": 502' in logs


def test_a_token_github_accepts_is_logged_with_its_login(world: World) -> None:
    port = free_port()
    args = ["--metrics-bind-address", f"127.0.0.1:{port}", "--health-probe-bind-address", f"127.0.0.1:{port}"]
    replicator = ControllerProcess("replicator", args, env=world.env, log_dir=world.workdir)
    world.controllers.append(replicator)
    wait_until(
        lambda: "github credentials accepted" in replicator.logs() or not replicator.running,
        timeout=30,
        message="credentials checked",
    )
    accepted = [json.loads(line) for line in replicator.logs().splitlines() if "github credentials accepted" in line]
    assert [record["identity"] for record in accepted] == ["developer"]
