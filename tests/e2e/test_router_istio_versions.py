"""A cluster whose Istio serves only ``networking.istio.io/v1beta1``, with an ingress VirtualService.

The router process discovers the version and reads and writes VirtualServices in it; a gateway
VirtualService that opted in gets the PR route, so QA traffic is routed at the ingress, while one
that did not opt in is left alone. The CRD is Istio's own (from ``../shared``, else the bundled
one), reduced to its v1beta1 version as an older Istio installs it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e.router_support import ROUTER_TOKEN, Router, create_clone

from controller_common import contract
from controller_common.kube import SERVICES
from e2e_support import wait_until
from emulators.kube_api import BUNDLED_VIRTUAL_SERVICE_CRD
from emulators.kube_api.crds import load_crd_files
from evaluate_support import route_request
from istio_schema import istio_errors
from service_router.evaluate import evaluate
from service_router.istio import virtual_service_resource
from shared_data import find_shared_dir, istio_crd_paths
from world import World

pytestmark = pytest.mark.e2e

VS_V1BETA1 = virtual_service_resource("v1beta1")
ORIGIN = "echo"
CLONE = "echo-pr1"
HEADER = contract.routing_header(ORIGIN, "default")
INGRESS = "istio-system/ingress"


def _v1beta1_only_crd(directory: Path) -> Path:
    crds = load_crd_files(istio_crd_paths() or [BUNDLED_VIRTUAL_SERVICE_CRD])
    (crd,) = [copy.deepcopy(c) for c in crds if c["spec"]["names"]["kind"] == "VirtualService"]
    crd["spec"]["versions"] = [
        dict(v, served=True, storage=True) for v in crd["spec"]["versions"] if v["name"] == "v1beta1"
    ]
    path = directory / "virtualservice-v1beta1.yaml"
    path.write_text(yaml.safe_dump(crd))
    return path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path).start(crd_paths=[_v1beta1_only_crd(tmp_path)])
    try:
        yield w
    finally:
        w.stop()


def _vs(world: World, name: str) -> dict[str, Any]:
    return world.client.get(VS_V1BETA1, world.namespace, name)


def _route_names(world: World, name: str) -> list[str]:
    return [str(r.get("name")) for r in _vs(world, name)["spec"].get("http") or []]


def _gateway_vs(name: str, host: str, *, opt_in: bool) -> dict[str, Any]:
    annotations = {contract.GATEWAY_OPT_IN_ANNOTATION: "true"} if opt_in else {}
    return {
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {
            "hosts": [host],
            "gateways": [INGRESS],
            "http": [
                {
                    "name": "web",
                    "match": [{"uri": {"prefix": "/"}}],
                    "rewrite": {"uri": "/"},
                    "route": [{"destination": {"host": "echo.default.svc.cluster.local", "port": {"number": 80}}}],
                }
            ],
        },
    }


def test_router_uses_v1beta1_and_routes_an_opted_in_gateway(world: World) -> None:
    world.client.create(
        SERVICES,
        {
            "metadata": {"name": ORIGIN, "namespace": "default"},
            "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}},
        },
    )
    world.client.create(
        VS_V1BETA1,
        {
            "metadata": {"name": ORIGIN, "namespace": "default"},
            "spec": {"hosts": [ORIGIN], "http": [{"name": "default", "route": [{"destination": {"host": ORIGIN}}]}]},
        },
    )
    world.client.create(VS_V1BETA1, _gateway_vs("echo-ingress", "echo.example.com", opt_in=True))
    world.client.create(VS_V1BETA1, _gateway_vs("echo-public", "public.example.com", opt_in=False))
    public_before = _vs(world, "echo-public")
    router = Router(world).start()

    create_clone(world, CLONE, ORIGIN)
    route = contract.managed_route_name(CLONE)
    wait_until(
        lambda: (
            _route_names(world, ORIGIN) == [route, "default"] and _route_names(world, "echo-ingress") == [route, "web"]
        ),
        timeout=15,
        message="mesh and opted-in gateway VirtualServices routed",
    )

    # Everything the router asked about VirtualServices, it asked in v1beta1 (v1 is not served).
    asked = [r.path for r in world.kube.request_log if r.user == ROUTER_TOKEN and r.resource == "virtualservices"]
    assert asked and all("/networking.istio.io/v1beta1/" in p for p in asked)
    assert [r.verb for r in router.writes()] == ["update", "update"]
    assert _vs(world, "echo-public") == public_before

    shared = find_shared_dir()
    for name in (ORIGIN, "echo-ingress"):
        written = _vs(world, name)
        assert written["apiVersion"] == "networking.istio.io/v1beta1"
        if shared is not None:
            assert istio_errors({k: v for k, v in written.items() if k != "status"}, shared) == []

    mesh = _vs(world, ORIGIN)
    assert route_request(mesh, host=ORIGIN, headers={HEADER: f"{CLONE}.default"}) == CLONE
    assert route_request(mesh, host=ORIGIN, headers={HEADER: "echo-pr2.default"}) == ORIGIN
    ingress = [_vs(world, "echo-ingress")]
    at_ingress = evaluate(
        ingress,
        host="echo.example.com",
        namespace="istio-system",
        headers={HEADER: f"{CLONE}.default"},
        gateway=INGRESS,
    )
    assert at_ingress is not None and at_ingress.host.startswith(f"{CLONE}.")
    stale = evaluate(
        ingress,
        host="echo.example.com",
        namespace="istio-system",
        headers={HEADER: "echo-pr2.default"},
        gateway=INGRESS,
    )
    assert stale is not None and stale.host.startswith(f"{ORIGIN}.")
