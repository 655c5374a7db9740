"""The whole chain, pure: JWT or baggage -> shipped Lua filter -> headers -> the router's VirtualServices
-> Istio's route evaluation -> the clone for each overridden service, the origin for every other.

The VirtualServices are the ones the router plans (``routes.plan_virtual_service``) for the clones
below; the evaluation is ``service_router.evaluate``. Each service of a call graph makes its own
outbound request through its own sidecar, so each host is evaluated with the headers the sidecar
filter derived from the same propagated context.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from unit.propagation.lua_harness import LuaFilter

from service_router.evaluate import Destination, evaluate
from service_router.routes import Clone, plan_virtual_service

NS = "qa"
KEY = "any key of 32 bytes or more: never verified here"
PORTS = {"echo": 8080, "payments-api": 9090, "web": 80}
CLONES = [Clone("echo-pr12", NS, "echo"), Clone("echo-pr13", NS, "echo"), Clone("payments-api-pr7", NS, "payments-api")]
ECHO_VS: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "echo", "namespace": NS},
    "spec": {
        "hosts": ["echo"],
        "http": [
            {"name": "default", "timeout": "5s", "route": [{"destination": {"host": "echo", "port": {"number": 8080}}}]}
        ],
    },
}


def _mesh() -> list[dict[str, Any]]:
    """The router's VirtualServices: echo's edited in place, payments-api's created, web's untouched."""
    planned = []
    for origin in ("echo", "payments-api", "web"):
        plan = plan_virtual_service(
            origin_service=origin,
            namespace=NS,
            origin_ports=(PORTS[origin],),
            clones=CLONES,
            virtual_services=[ECHO_VS],
        )
        if plan.virtual_service is not None:
            planned.append(plan.virtual_service)
    assert {vs["metadata"]["name"] for vs in planned} >= {"echo"}
    return planned


def _bearer(claim: object) -> tuple[str, str]:
    return ("authorization", "Bearer " + jwt.encode({"sub": "qa", "service_routers": claim}, KEY, algorithm="HS256"))


def _host(service: str) -> str:
    return f"{service}.{NS}.svc.cluster.local"


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ([], {}),
        (
            [
                _bearer(
                    {"service-router-echo-qa": "echo-pr12.qa", "service-router-payments-api-qa": "payments-api-pr7.qa"}
                )
            ],
            {"echo": "echo-pr12", "payments-api": "payments-api-pr7"},
        ),
        ([("baggage", "userId=alice,service-router-echo-qa=echo-pr13.qa")], {"echo": "echo-pr13"}),
        (
            [("baggage", "service-router-echo-qa=echo-pr13.qa"), _bearer({"service-router-echo-qa": "echo-pr12.qa"})],
            {"echo": "echo-pr12"},
        ),
        (
            [
                ("baggage", "service-router-payments-api-qa=payments-api-pr7.qa"),
                _bearer({"service-router-echo-qa": "x"}),
            ],
            {"payments-api": "payments-api-pr7"},
        ),
        ([_bearer({"service-router-echo-qa": "echo-pr99.qa"})], {}),
        ([("authorization", "Bearer a.%%%.c")], {}),
        (
            [("service-router-echo-qa", "echo-pr13.qa"), _bearer({"service-router-echo-qa": "echo-pr12.qa"})],
            {"echo": "echo-pr12"},
        ),
    ],
    ids=[
        "no-context",
        "jwt-two-services",
        "baggage-one-service",
        "jwt-beats-baggage",
        "malformed-jwt-baggage-still-routes",
        "clone-gone-falls-back-to-origin",
        "bad-base64-everything-to-origins",
        "jwt-replaces-a-stale-forwarded-header",
    ],
)
def test_propagated_context_reaches_the_clones(
    context: list[tuple[str, str]], expected: dict[str, str], lua_filters: dict[str, LuaFilter]
) -> None:
    mesh = _mesh()
    for service, port in PORTS.items():
        request = [(":authority", f"{service}:{port}"), (":path", "/"), *context]
        headers = lua_filters["sidecar"].run(request).as_dict()
        destination = evaluate(mesh, host=service, namespace=NS, headers=headers, port=port)
        target = expected.get(service, service)
        assert destination is not None and destination.host == _host(target), (service, headers)
        assert destination == Destination(_host(target), port, None, destination.weight)
