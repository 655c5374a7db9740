"""Fixtures shared by the ``controller_common`` tests: a fresh metrics registry, the kube API emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller_common.kube import KubeClient
from controller_common.metrics import Metrics


@pytest.fixture
def metrics() -> Metrics:
    """Library metrics on their own registry, so tests never see each other's samples."""
    return Metrics("test")


@pytest.fixture
def server() -> Iterator[Any]:
    """A Kubernetes API emulator for this test alone."""
    kube_api = pytest.importorskip("emulators.kube_api")
    server = kube_api.KubeApiServer().start()
    yield server
    server.stop()


@pytest.fixture
def client(server: Any, tmp_path: Path) -> Iterator[KubeClient]:
    """The real client, configured through a kubeconfig pointing at :func:`server`."""
    client = KubeClient.from_environment(str(server.write_kubeconfig(tmp_path / "kubeconfig")), request_timeout=5)
    yield client
    client.close()
