"""The dynamic client (discovery-driven) and the ``python -m emulators.kube_api`` entry point."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client, config, dynamic
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

from emulators.kube_api import BUNDLED_VIRTUAL_SERVICE_CRD, KubeApiServer
from emulators.kube_api.testing import deployment, virtual_service, wait_for

TESTS_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def dyn(api_client: client.ApiClient) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(api_client)


def test_dynamic_client_crud_on_deployments(dyn: dynamic.DynamicClient) -> None:
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    created = deployments.create(body=deployment(), namespace="default")
    assert created.metadata.generation == 1
    got = deployments.get(name="web", namespace="default")
    assert got.metadata.uid == created.metadata.uid
    deployments.delete(name="web", namespace="default")
    with pytest.raises(NotFoundError):
        deployments.get(name="web", namespace="default")


def test_dynamic_client_finds_a_crd_created_after_it_started(server: KubeApiServer, dyn: dynamic.DynamicClient) -> None:
    dyn.resources.get(api_version="v1", kind="Service")  # discovery is cached from here on
    server.apply_crd_files([BUNDLED_VIRTUAL_SERVICE_CRD])
    vs = dyn.resources.get(api_version="networking.istio.io/v1", kind="VirtualService")
    vs.create(body=virtual_service(), namespace="default")
    assert [i.metadata.name for i in vs.get(namespace="default").items] == ["web"]


def test_dynamic_client_sees_conflicts(with_vs_crd: KubeApiServer, dyn: dynamic.DynamicClient) -> None:
    vs = dyn.resources.get(api_version="networking.istio.io/v1", kind="VirtualService")
    first = vs.create(body=virtual_service(), namespace="default").to_dict()
    second = dict(first, spec=dict(first["spec"], gateways=["mesh"]))
    vs.replace(body=second, namespace="default")
    with pytest.raises(ConflictError):
        vs.replace(body=first, namespace="default")


def test_dynamic_client_server_side_filtering(with_vs_crd: KubeApiServer, dyn: dynamic.DynamicClient) -> None:
    vs = dyn.resources.get(api_version="networking.istio.io/v1", kind="VirtualService")
    labelled = virtual_service("a")
    labelled["metadata"]["labels"] = {"owner": "router"}
    vs.create(body=labelled, namespace="default")
    vs.create(body=virtual_service("b"), namespace="default")
    assert [i.metadata.name for i in vs.get(namespace="default", label_selector="owner=router").items] == ["a"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_module_entry_point_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(TESTS_DIR))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.kube_api",
            "--port",
            str(port),
            "--kubeconfig",
            str(kubeconfig),
            "--crd",
            str(BUNDLED_VIRTUAL_SERVICE_CRD),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(kubeconfig.exists, timeout=10)
        api = config.new_client_from_config(config_file=str(kubeconfig))
        crd = client.CustomObjectsApi(api).create_namespaced_custom_object(
            "networking.istio.io", "v1", "default", "virtualservices", virtual_service()
        )
        assert crd["metadata"]["uid"]
        api.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert f"http://127.0.0.1:{port}" in out


def test_restart_on_the_same_port_keeps_state(tmp_path: Path) -> None:
    server = KubeApiServer().start()
    try:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        api = config.new_client_from_config(config_file=str(kubeconfig))
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map("default", {"metadata": {"name": "kept"}})
        port = server.port
        server.stop()
        server.start()
        assert server.port == port
        assert core.read_namespaced_config_map("kept", "default").metadata.name == "kept"
        api.close()
    finally:
        server.stop()
