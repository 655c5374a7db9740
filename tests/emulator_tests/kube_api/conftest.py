"""Fixtures for the Kubernetes API emulator's own tests: a fresh server and real clients per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from emulators.kube_api import BUNDLED_VIRTUAL_SERVICE_CRD, KubeApiServer


@pytest.fixture
def server() -> Iterator[KubeApiServer]:
    with KubeApiServer(deployment_delay_seconds=0.01, bookmark_interval_seconds=0.2) as srv:
        yield srv
    assert srv.internal_errors == [], "\n".join(srv.internal_errors)


@pytest.fixture
def kubeconfig(server: KubeApiServer, tmp_path: Path) -> Path:
    return server.write_kubeconfig(tmp_path / "kubeconfig", token="test-token")


@pytest.fixture
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    yield api
    api.close()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def with_vs_crd(server: KubeApiServer) -> KubeApiServer:
    server.apply_crd_files([BUNDLED_VIRTUAL_SERVICE_CRD])
    return server
