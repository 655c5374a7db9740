"""The router reads and writes VirtualServices in the version the server serves (here: only v1beta1)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller_common import contract, errors
from controller_common.kube import KubeClient
from emulators.kube_api import BUNDLED_VIRTUAL_SERVICE_CRD, KubeApiServer
from emulators.kube_api.crds import load_crd_files
from istio_schema import istio_errors
from service_router.istio import discover_virtual_services, virtual_service_resource
from shared_data import find_shared_dir

from .conftest import NS, Rig, make_rig

CLONE = "echo-pr1"


def serving_only(crd: dict[str, Any], version: str) -> dict[str, Any]:
    """The CRD with ``version`` as its only served (and storage) version, as an older Istio installs it."""
    crd = copy.deepcopy(crd)
    crd["spec"]["versions"] = [
        dict(v, served=True, storage=True) for v in crd["spec"]["versions"] if v["name"] == version
    ]
    assert crd["spec"]["versions"], version
    return crd


@pytest.fixture
def v1beta1_rig(tmp_path: Path) -> Iterator[Rig]:
    with KubeApiServer(deployment_delay_seconds=0.01) as server:
        (crd,) = [
            c for c in load_crd_files([BUNDLED_VIRTUAL_SERVICE_CRD]) if c["spec"]["names"]["kind"] == "VirtualService"
        ]
        server.apply_crd(serving_only(crd, "v1beta1"))
        client = KubeClient.from_environment(str(server.write_kubeconfig(tmp_path / "discover")))
        try:
            resource = discover_virtual_services(client)
        finally:
            client.close()
        assert resource == virtual_service_resource("v1beta1")
        yield from make_rig(server, tmp_path, resource)


def test_discovery_prefers_v1_when_served(rig: Rig) -> None:
    assert discover_virtual_services(rig.client) == virtual_service_resource("v1")


def test_only_v1beta1_served_routes_are_read_and_written_in_v1beta1(v1beta1_rig: Rig) -> None:
    rig = v1beta1_rig
    rig.origin()
    rig.client.create(
        rig.resource,
        {
            "metadata": {
                "name": "echo-ingress",
                "namespace": NS,
                "annotations": {contract.GATEWAY_OPT_IN_ANNOTATION: "true"},
            },
            "spec": {
                "hosts": ["echo.example.com"],
                "gateways": ["istio-system/ingress"],
                "http": [{"name": "web", "route": [{"destination": {"host": "echo.default.svc.cluster.local"}}]}],
            },
        },
    )
    rig.clone(CLONE)

    rig.reconcile()

    assert rig.route_names() == [contract.managed_route_name(CLONE), "default"]
    assert rig.route_names("echo-ingress") == [contract.managed_route_name(CLONE), "web"]
    writes = rig.vs_writes()
    assert writes and all("/networking.istio.io/v1beta1/" in r.path for r in writes)
    with pytest.raises(errors.NotFound):
        rig.client.get(virtual_service_resource("v1"), NS, "echo")
    shared = find_shared_dir()
    for name in ("echo", "echo-ingress"):
        written = rig.vs(name)
        assert written["apiVersion"] == "networking.istio.io/v1beta1"
        if shared is not None:
            assert istio_errors(written, shared) == []
