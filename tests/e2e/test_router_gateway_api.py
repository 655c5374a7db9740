"""Gateway API routing end to end: both controllers as processes, the Gateway API CRDs served.

An origin whose HTTPRoute has a path match, a timeout and a header filter gets, per PR, a derived
HTTPRoute that validates against the CRD; the origin's HTTPRoute stays byte-identical; by the
evaluator, header traffic reaches the clone through the origin rule's filters, other traffic the
origin. An origin without a route gets a baseline that goes with the last clone; a gRPC origin
gets GRPCRoutes; closing the PR removes the derived route before the Service goes. The same
origin with ``--routing-api=virtualservice`` is routed by its VirtualService, as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.router_support import Router, create_clone
from gateway_api_schema import gateway_api_crd_paths, gateway_api_errors

from controller_common import contract, objects
from controller_common.kube import SERVICES, Resource
from e2e_support import ControllerProcess, wait_until
from evaluate_support import route_request
from service_router.gateway_evaluate import attached, route_http_request, select_grpc_rule, select_http_rule
from shared_data import find_shared_dir, istio_crd_paths
from world import World

pytestmark = pytest.mark.e2e

ORIGIN = "echo"
IMAGE = "ghcr.io/mercari/echo:1.4.2"
NS = "default"
HEADER = contract.routing_header(ORIGIN, NS)
HTTP_ROUTES = Resource(group="gateway.networking.k8s.io", version="v1", plural="httproutes", kind="HTTPRoute")
GRPC_ROUTES = Resource(group="gateway.networking.k8s.io", version="v1", plural="grpcroutes", kind="GRPCRoute")
FILTER = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-env", "value": "prod"}]}}


def _shared() -> Path:
    shared = find_shared_dir()
    if shared is None:
        pytest.skip("../shared is absent (plain clone): the Gateway API CRDs are unavailable")
    return shared


@pytest.fixture
def gateway_world(tmp_path: Path) -> Iterator[World]:
    """Istio's and the Gateway API's CRDs served."""
    w = World(tmp_path).start(crd_paths=[*istio_crd_paths(), *gateway_api_crd_paths(_shared())])
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture
def gateway_only_world(tmp_path: Path) -> Iterator[World]:
    """Only the Gateway API's CRDs: no VirtualService kind."""
    w = World(tmp_path).start(crd_paths=gateway_api_crd_paths(_shared()))
    try:
        yield w
    finally:
        w.stop()


def origin_route() -> dict[str, Any]:
    return {
        "metadata": {"name": ORIGIN, "namespace": NS},
        "spec": {
            "parentRefs": [{"group": "", "kind": "Service", "name": ORIGIN, "port": 80}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                    "filters": [FILTER],
                    "timeouts": {"request": "5s"},
                    "backendRefs": [{"name": ORIGIN, "port": 80}],
                },
                {"backendRefs": [{"name": ORIGIN, "port": 80}]},
            ],
        },
    }


def routes(world: World, resource: Resource = HTTP_ROUTES) -> dict[str, dict[str, Any]]:
    return {objects.name(r): r for r in world.client.list(resource, NS)[0]}


def _without_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items() if k in ("name", "namespace", "labels", "annotations")}
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta, "spec": obj["spec"]}


def start_controllers(world: World, *router_flags: str) -> None:
    """Both controllers as processes, like :meth:`World.start_controllers`, flags for the router only."""
    common = ["--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"]
    common += ["--resync-period", "30"]
    env = {**world.env, "POLL_INTERVAL_SECONDS": "0.3"}
    world.controllers.append(ControllerProcess("replicator", common, env=env, log_dir=world.workdir))
    world.controllers.append(
        ControllerProcess("service-router", [*common, *router_flags], env=env, log_dir=world.workdir)
    )


def _close(repo: Any, number: int) -> None:
    repo.get_pull(number).edit(state="closed")


def test_a_pull_request_gets_a_derived_httproute_next_to_the_origins_which_stays_untouched(
    gateway_world: World,
) -> None:
    world = gateway_world
    repo = world.create_repository(ORIGIN)
    world.seed_origin(ORIGIN, repository=f"https://github.com/mercari/{ORIGIN}", image=IMAGE)
    world.client.create(HTTP_ROUTES, origin_route())
    original = json.dumps(routes(world)[ORIGIN], sort_keys=True)
    vs_before = world.snapshot(ORIGIN).virtual_service
    start_controllers(world)

    number = world.open_pull_request(repo, "feature-a")
    clone = f"{ORIGIN}-pr{number}"
    derived_name = f"service-router--{clone}"
    wait_until(lambda: derived_name in routes(world), timeout=30, message="derived HTTPRoute")
    standing = routes(world)
    derived = standing[derived_name]
    assert gateway_api_errors(_without_server_fields(derived), _shared()) == []
    assert json.dumps(standing[ORIGIN], sort_keys=True) == original
    assert derived["spec"]["parentRefs"] == [{"group": "", "kind": "Service", "name": ORIGIN, "port": 80}]
    assert "service-router--echo--baseline" not in standing  # the origin has a route of its own
    # auto: an origin with an HTTPRoute attached is routed by the Gateway API, its VirtualService untouched
    assert world.snapshot(ORIGIN).virtual_service == vs_before

    everything = list(standing.values())
    on_origin = attached(everything, service=ORIGIN, namespace=NS, port=80)
    with_header = select_http_rule(on_origin, path="/api/items", headers={HEADER: f"{clone}.{NS}"})
    assert with_header is not None and with_header.backend == clone
    assert with_header.filters == [FILTER] and with_header.timeouts == {"request": "5s"}
    assert route_http_request(everything, service=ORIGIN, namespace=NS, path="/api/items") == ORIGIN
    stale = {HEADER: f"{ORIGIN}-pr999.{NS}"}
    assert route_http_request(everything, service=ORIGIN, namespace=NS, path="/api/items", headers=stale) == ORIGIN
    assert (
        route_http_request(everything, service=ORIGIN, namespace=NS, path="/", headers={HEADER: f"{clone}.{NS}"})
        == clone
    )

    world.kube.request_log.clear()
    _close(repo, number)
    wait_until(
        lambda: clone not in {objects.name(s) for s in world.client.list(SERVICES, NS)[0]},
        timeout=30,
        message="clone Service gone",
    )
    assert derived_name not in routes(world)
    log = world.kube.request_log
    route_deleted = next(i for i, r in enumerate(log) if r.resource == "httproutes" and r.verb == "delete")
    finalizer_released = max(
        i for i, r in enumerate(log) if r.resource == "services" and r.name == clone and r.verb == "patch"
    )
    assert route_deleted < finalizer_released
    assert json.dumps(routes(world)[ORIGIN], sort_keys=True) == original


def test_with_routing_api_virtualservice_the_same_origin_is_routed_by_its_virtual_service(gateway_world: World) -> None:
    world = gateway_world
    repo = world.create_repository(ORIGIN)
    world.seed_origin(ORIGIN, repository=f"https://github.com/mercari/{ORIGIN}", image=IMAGE)
    world.client.create(HTTP_ROUTES, origin_route())
    start_controllers(world, "--routing-api=virtualservice")

    number = world.open_pull_request(repo, "feature-a")
    clone = f"{ORIGIN}-pr{number}"
    snap = world.wait_for(ORIGIN, lambda s: s.route_names[:1] == [f"service-router--{clone}"], message="VS route")
    assert route_request(snap.virtual_service, host=ORIGIN, headers={HEADER: f"{clone}.{NS}"}) == clone
    assert route_request(snap.virtual_service, host=ORIGIN, headers={}) == ORIGIN
    assert list(routes(world)) == [ORIGIN]
    _close(repo, number)
    world.wait_for(ORIGIN, lambda s: clone not in s.services and s.route_names == ["default"], message="VS route gone")
    assert list(routes(world)) == [ORIGIN]


def test_an_origin_without_a_route_gets_a_baseline_that_goes_with_the_last_clone(gateway_world: World) -> None:
    world = gateway_world
    world.client.create(
        SERVICES,
        {
            "metadata": {"name": ORIGIN, "namespace": NS},
            "spec": {"selector": {"app": ORIGIN}, "ports": [{"name": "http", "port": 80}]},
        },
    )
    router = Router(world, extra=("--routing-api=gateway-api",)).start()
    create_clone(world, "echo-pr1", ORIGIN)
    create_clone(world, "echo-pr2", ORIGIN)
    expected = {"service-router--echo--baseline", "service-router--echo-pr1", "service-router--echo-pr2"}
    wait_until(lambda: set(routes(world)) == expected, timeout=20, message="baseline and derived routes")
    # The server defaults fields the planner leaves out (CEL rules and defaults enforced): planning
    # again over what the server stored must still be a no-op, not a write per reconcile.
    writes = len(router.writes("httproutes"))
    router.settle(lambda: create_clone(world, "unrelated-pr1", "unrelated"))
    router.settle(lambda: world.client.patch(SERVICES, NS, ORIGIN, {"metadata": {"labels": {"poked": "yes"}}}))
    assert len(router.writes("httproutes")) == writes, "a steady state writes nothing"
    world.client.delete(SERVICES, NS, "unrelated-pr1")
    everything = list(routes(world).values())
    for route in everything:
        assert gateway_api_errors(_without_server_fields(route), _shared()) == []
    assert route_http_request(everything, service=ORIGIN, namespace=NS) == ORIGIN
    assert (
        route_http_request(everything, service=ORIGIN, namespace=NS, headers={HEADER: f"echo-pr2.{NS}"}) == "echo-pr2"
    )

    world.client.delete(SERVICES, NS, "echo-pr1")
    wait_until(lambda: set(routes(world)) == expected - {"service-router--echo-pr1"}, timeout=20, message="one clone")
    world.client.delete(SERVICES, NS, "echo-pr2")
    wait_until(lambda: routes(world) == {}, timeout=20, message="baseline gone with the last clone")
    wait_until(lambda: [objects.name(s) for s in world.client.list(SERVICES, NS)[0]] == [ORIGIN], timeout=20)


def test_a_grpc_origin_gets_grpcroutes_where_virtual_services_are_not_served(gateway_only_world: World) -> None:
    """The router starts without the VirtualService kind (auto: the Gateway API), and gRPC ports get GRPCRoutes."""
    world = gateway_only_world
    world.client.create(
        SERVICES,
        {
            "metadata": {"name": ORIGIN, "namespace": NS},
            "spec": {"selector": {"app": ORIGIN}, "ports": [{"name": "grpc", "port": 80}]},
        },
    )
    router = Router(world).start()
    create_clone(world, "echo-pr1", ORIGIN)
    wait_until(
        lambda: set(routes(world, GRPC_ROUTES)) == {"service-router--echo--baseline", "service-router--echo-pr1"},
        timeout=20,
        message="GRPCRoutes",
    )
    assert routes(world) == {}
    grpc = list(routes(world, GRPC_ROUTES).values())
    for route in grpc:
        assert gateway_api_errors(_without_server_fields(route), _shared()) == []
    selected = select_grpc_rule(grpc, service="echo.Echo", method="Say", headers={HEADER: f"echo-pr1.{NS}"})
    assert selected is not None and selected.backend == "echo-pr1"
    plain = select_grpc_rule(grpc, service="echo.Echo", method="Say")
    assert plain is not None and plain.backend == ORIGIN
    writes = len(router.writes("grpcroutes"))
    router.settle(lambda: create_clone(world, "unrelated-pr1", "unrelated"))
    assert len(router.writes("grpcroutes")) == writes  # a steady state writes nothing
    world.client.delete(SERVICES, NS, "echo-pr1")
    wait_until(lambda: routes(world, GRPC_ROUTES) == {}, timeout=20, message="GRPCRoutes gone")
