"""The whole header-propagation chain against the router process and the emulated cluster.

A QA request carries a JWT ``service_routers`` claim (or W3C baggage); the shipped Lua filter turns
it into routing headers; the VirtualServices the running service-router wrote into the emulated
cluster are evaluated with Istio's first-match semantics (the router's own model). The overridden
service reaches its clone; every other service, and a stale override, reaches the origin.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from unit.propagation.lua_harness import LuaFilter, shipped_lua

from controller_common import contract
from controller_common.kube import SERVICES
from e2e_support import ControllerProcess, wait_until
from service_router.evaluate import evaluate
from world import VIRTUAL_SERVICES, World

pytestmark = pytest.mark.e2e

NS = "default"
KEY = "any key of 32 bytes or more: never verified here"


def _service(name: str, *, origin: str | None = None) -> dict[str, Any]:
    annotations = {contract.ORIGIN_SERVICE_ANNOTATION: origin} if origin else {}
    return {
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
    }


def _virtual_services(world: World) -> list[dict[str, Any]]:
    return world.client.list(VIRTUAL_SERVICES, NS)[0]


def _destination(virtual_services: list[dict[str, Any]], service: str, headers: dict[str, str]) -> str:
    found = evaluate(virtual_services, host=f"{service}.{NS}.svc.cluster.local", namespace=NS, headers=headers)
    assert found is not None
    return found.host.split(".")[0]


def test_jwt_and_baggage_overrides_reach_clones_through_the_routes_the_router_wrote(world: World) -> None:
    for name in ("echo", "payments", "web"):
        world.client.create(SERVICES, _service(name))
    world.client.create(
        VIRTUAL_SERVICES,
        {
            "metadata": {"name": "echo", "namespace": NS},
            "spec": {
                "hosts": ["echo"],
                "http": [{"name": "default", "timeout": "5s", "route": [{"destination": {"host": "echo"}}]}],
            },
        },
    )
    # What the replicator would have created for PR 12 of echo and PR 7 of payments.
    world.client.create(SERVICES, _service("echo-pr12", origin="echo"))
    world.client.create(SERVICES, _service("payments-pr7", origin="payments"))

    flags = ["--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"]
    world.controllers.append(ControllerProcess("service-router", flags, env=world.env, log_dir=world.workdir))

    def routed() -> list[dict[str, Any]] | None:
        names = {r.get("name") for vs in _virtual_services(world) for r in vs["spec"].get("http") or []}
        wanted = {contract.managed_route_name("echo-pr12"), contract.managed_route_name("payments-pr7")}
        return _virtual_services(world) if wanted <= names else None

    mesh = wait_until(routed, timeout=30, message="router wrote both routes")

    sidecar = LuaFilter(shipped_lua("sidecar"))
    claim = {
        contract.routing_header("echo", NS): contract.routing_value("echo-pr12", NS),
        contract.routing_header("payments", NS): contract.routing_value("payments-pr7", NS),
    }
    token = jwt.encode({"sub": "qa", contract.JWT_CLAIM: claim}, KEY, algorithm="HS256")
    from_jwt = sidecar.run([("authorization", f"Bearer {token}")]).as_dict()
    assert _destination(mesh, "echo", from_jwt) == "echo-pr12"
    assert _destination(mesh, "payments", from_jwt) == "payments-pr7"
    assert _destination(mesh, "web", from_jwt) == "web"

    baggage = f"{contract.routing_header('echo', NS)}={contract.routing_value('echo-pr12', NS)},userId=42"
    from_baggage = sidecar.run([("baggage", baggage)]).as_dict()
    assert _destination(mesh, "echo", from_baggage) == "echo-pr12"
    assert _destination(mesh, "payments", from_baggage) == "payments"

    stale = sidecar.run([("baggage", f"{contract.routing_header('echo', NS)}=echo-pr99.{NS}")]).as_dict()
    assert _destination(mesh, "echo", stale) == "echo"
    assert _destination(mesh, "echo", sidecar.run([]).as_dict()) == "echo"
