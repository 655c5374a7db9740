"""Start-up checks: each configuration mistake is one StartupError naming the flag or file and the fix,
with its own exit code, reported by run_main as one structured log line."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from controller_common import startup
from controller_common.flags import ProcessSettings
from controller_common.logging import configure_logging
from controller_common.startup import StartupError, check_listen_addresses, kube_client, read_credentials_file


def test_exit_codes_are_distinct_and_clear_of_usage_and_runtime_failures() -> None:
    codes = [
        startup.EXIT_KUBECONFIG,
        startup.EXIT_BIND_ADDRESS,
        startup.EXIT_CANNOT_LISTEN,
        startup.EXIT_CREDENTIALS_FILE,
        startup.EXIT_GITHUB_CREDENTIALS,
    ]
    assert len(set(codes)) == len(codes)
    assert not {0, 1, 2} & set(codes)


def test_run_main_logs_one_json_line_and_returns_the_code() -> None:
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)

    def main() -> int:
        raise StartupError(6, "--github-token-file /x: cannot read it (No such file);\n fix the path")

    assert startup.run_main(main, name="replicator") == 6
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "cannot start" and record["level"] == "error"
    assert record["error"] == "--github-token-file /x: cannot read it (No such file); fix the path"
    assert record["exit_code"] == 6 and record["logger"] == "replicator"


def test_run_main_configures_logging_when_the_error_came_first(monkeypatch: pytest.MonkeyPatch) -> None:
    configured: list[bool] = []
    monkeypatch.setattr(structlog, "is_configured", lambda: False)
    monkeypatch.setattr(startup, "configure_logging", lambda: configured.append(True))
    assert startup.run_main(lambda: (_ for _ in ()).throw(StartupError(3, "x")), name="c") == 3
    assert configured == [True]


def test_run_main_passes_other_results_and_errors_through() -> None:
    assert startup.run_main(lambda: 0, name="c") == 0
    with pytest.raises(RuntimeError):
        startup.run_main(lambda: (_ for _ in ()).throw(RuntimeError("bug")), name="c")


# --- listen addresses ----------------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8080", "no port"),
        ("127.0.0.1:http", "port is not a number"),
        (":70000", "port out of range"),
        ("192.0.2.1:8080", "cannot listen there"),
    ],
    ids=["no-colon", "named-port", "out-of-range", "not-this-machine"],
)
def test_a_bad_bind_address_names_the_flag(address: str, reason: str) -> None:
    with pytest.raises(StartupError) as raised:
        check_listen_addresses({"--metrics-bind-address": address})
    assert raised.value.exit_code == startup.EXIT_BIND_ADDRESS
    assert raised.value.message.startswith(f"--metrics-bind-address={address!r}: ")
    assert reason in raised.value.message


def test_a_port_in_use_names_the_flag_and_the_port(taken_port: int) -> None:
    with pytest.raises(StartupError) as raised:
        check_listen_addresses(
            {"--metrics-bind-address": "0", "--health-probe-bind-address": f"127.0.0.1:{taken_port}"}
        )
    assert raised.value.exit_code == startup.EXIT_CANNOT_LISTEN
    assert f"--health-probe-bind-address='127.0.0.1:{taken_port}': port {taken_port} is already in use" in (
        raised.value.message
    )


def test_metrics_and_probes_may_share_an_address_other_flags_may_not() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    same = f"127.0.0.1:{port}"
    check_listen_addresses({"--metrics-bind-address": same, "--health-probe-bind-address": same})
    check_listen_addresses({"--metrics-bind-address": "127.0.0.1:0", "--webhook-bind-address": "127.0.0.1:0"})
    check_listen_addresses({"--metrics-bind-address": "0", "--webhook-bind-address": ""})
    with pytest.raises(StartupError) as raised:
        check_listen_addresses({"--metrics-bind-address": same, "--webhook-bind-address": same})
    assert raised.value.exit_code == startup.EXIT_CANNOT_LISTEN
    assert "name one port" in raised.value.message


# --- the cluster -----------------------------------------------------------------------------------


def process(kubeconfig: str | None = None, context: str | None = None) -> ProcessSettings:
    return ProcessSettings(
        kubeconfig=kubeconfig,
        namespaces=(),
        workers=1,
        resync_period_seconds=60,
        metrics_bind_address="0",
        health_probe_bind_address="0",
        log_level="info",
        log_format="json",
        dry_run=False,
        context=context,
    )


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: dev, context: {cluster: c, user: u}}, {name: prod, context: {cluster: c, user: u}}]
current-context: dev
"""


@pytest.fixture
def no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Not in a pod, no $KUBECONFIG, and a home without ~/.kube."""
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def _kube_error(settings: ProcessSettings) -> str:
    with pytest.raises(StartupError) as raised:
        kube_client(settings)
    assert raised.value.exit_code == startup.EXIT_KUBECONFIG
    return raised.value.message


def test_no_kubeconfig_and_not_in_a_cluster(no_cluster: Path) -> None:
    message = _kube_error(process())
    assert message.startswith("no Kubernetes cluster to talk to: not in a cluster")
    assert "pass --kubeconfig=PATH" in message


def test_a_missing_kubeconfig_names_the_flag_or_the_variable(no_cluster: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _kube_error(process(str(no_cluster / "nope"))).startswith(
        f"--kubeconfig {no_cluster / 'nope'}: no such file"
    )
    monkeypatch.setenv("KUBECONFIG", str(no_cluster / "gone"))
    assert _kube_error(process(str(no_cluster / "gone"))).startswith(f"$KUBECONFIG {no_cluster / 'gone'}: no such file")


def test_an_unreadable_or_malformed_kubeconfig(no_cluster: Path) -> None:
    assert _kube_error(process(str(no_cluster))).startswith(f"--kubeconfig {no_cluster}: not a file")
    garbage = no_cluster / "garbage"
    garbage.write_text("- just\n- a list\n")
    assert _kube_error(process(str(garbage))).startswith(f"--kubeconfig {garbage}: ")


def test_an_unknown_context_names_it_and_how_to_list_them(no_cluster: Path) -> None:
    path = no_cluster / "config"
    path.write_text(KUBECONFIG)
    message = _kube_error(process(str(path), context="staging"))
    assert message.startswith(f"--kubeconfig {path} (--context=staging): ")
    assert "kubectl config get-contexts" in message


def test_the_context_is_used(no_cluster: Path) -> None:
    path = no_cluster / "config"
    path.write_text(
        KUBECONFIG.replace("contexts: [", "contexts: [{name: other, context: {cluster: o, user: u}}, ", 1).replace(
            "clusters: [", 'clusters: [{name: o, cluster: {server: "http://10.9.8.7:6443"}}, ', 1
        )
    )
    assert kube_client(process(str(path))).host == "http://127.0.0.1:1"
    assert kube_client(process(str(path), context="other")).host == "http://10.9.8.7:6443"


def test_home_kubeconfig_is_the_last_resort(no_cluster: Path) -> None:
    (no_cluster / ".kube").mkdir()
    (no_cluster / ".kube" / "config").write_text(KUBECONFIG)
    assert kube_client(process()).host == "http://127.0.0.1:1"


def test_in_cluster_without_a_service_account_token(no_cluster: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if startup.IN_CLUSTER_TOKEN.exists():
        pytest.skip("running in a pod")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    message = _kube_error(process())
    assert message.startswith("in-cluster configuration: ")
    assert "automountServiceAccountToken" in message


# --- files ---------------------------------------------------------------------------------------


def test_credentials_files_are_read_stripped(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  ghp_abc\n")
    assert read_credentials_file("--github-token-file", str(tmp_path / "token")) == "ghp_abc"


@pytest.mark.parametrize("name", ["missing", "folder", "binary"])
def test_an_unreadable_credentials_file_names_the_flag_and_the_file(tmp_path: Path, name: str) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    path = str(tmp_path / name)
    with pytest.raises(StartupError) as raised:
        read_credentials_file("--webhook-secret-file", path)
    assert raised.value.exit_code == startup.EXIT_CREDENTIALS_FILE
    assert raised.value.message.startswith(f"--webhook-secret-file {path}: ")
