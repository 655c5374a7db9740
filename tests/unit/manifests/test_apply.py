"""``kubectl apply -k`` works, not only ``kubectl kustomize``: the manifests go through the real
kubectl against the Kubernetes API emulator (with Istio's CRDs from ``../shared``), the way the
README tells a new user to apply them.

The controller bases need kinds the emulator may not serve yet (RBAC, PodDisruptionBudget); for
those the test says which kinds are missing and skips, and starts applying them once served.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared_data import REPO_ROOT

kube_api = pytest.importorskip("emulators.kube_api")

Render = Callable[[str], list[dict[str, Any]]]
MANIFESTS = REPO_ROOT / "manifests"


@pytest.fixture
def cluster(shared_dir: Path, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    server = kube_api.KubeApiServer().start()
    try:
        server.apply_crd_files(sorted((shared_dir / "schemas" / "istio").glob("*.yaml")))
        yield server, server.write_kubeconfig(tmp_path / "kubeconfig")
    finally:
        server.stop()


def kubectl(binary: str, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=60, check=False
    )


def _served(server: Any, obj: dict[str, Any]) -> bool:
    return any(rt.api_version == obj["apiVersion"] and rt.kind == obj["kind"] for rt in server.registry.all())


def test_the_example_origin_and_the_envoyfilter_apply(cluster: tuple[Any, Path], kubectl_binary: str) -> None:
    _server, kubeconfig = cluster
    # Installing Istio creates istio-system; the EnvoyFilters go there. (`apply`, not `create
    # namespace`: kubectl's typed create speaks protobuf, which the emulator does not.)
    namespace = kubeconfig.parent / "istio-system.json"
    namespace.write_text(json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}))
    created = kubectl(kubectl_binary, kubeconfig, "apply", "-f", str(namespace))
    assert created.returncode == 0, created.stderr
    for directory in ("examples", "istio", "istio/gateway"):
        applied = kubectl(kubectl_binary, kubeconfig, "apply", "-k", str(MANIFESTS / directory))
        assert applied.returncode == 0, applied.stderr
        again = kubectl(kubectl_binary, kubeconfig, "apply", "-k", str(MANIFESTS / directory))
        assert again.returncode == 0 and "configured" not in again.stdout, again.stdout + again.stderr
    got = kubectl(kubectl_binary, kubeconfig, "get", "virtualservice", "hello", "-n", "hello-example", "-o", "json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["spec"]["http"][0]["name"] == "default"


@pytest.mark.parametrize("directory", ["replicator", "service-router"])
def test_the_controller_base_applies(
    directory: str, cluster: tuple[Any, Path], kubectl_binary: str, render: Render
) -> None:
    server, kubeconfig = cluster
    missing = sorted({f"{o['apiVersion']} {o['kind']}" for o in render(directory) if not _served(server, o)})
    if missing:
        pytest.skip(f"the Kubernetes API emulator does not serve {', '.join(missing)} yet")
    applied = kubectl(kubectl_binary, kubeconfig, "apply", "-k", str(MANIFESTS / directory))
    assert applied.returncode == 0, applied.stderr
