"""VirtualService shapes handed to the router's planner, fuzzed: never raises, never touches a foreign
route, and planning again on the result writes nothing.

Shapes a cluster really holds: no http routes, tcp/tls only, delegates, redirects, many hosts in
every spelling, gateways, opt-outs, routes of other origins, routes named ``service-router--...``
by someone else, stale routes of ours, origins that are no Service (a hand-written annotation) or
that are a clone themselves.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from unit.fuzz.strategies import any_text

from controller_common import contract
from service_router.cloning import is_managed_route, routed_clones
from service_router.routes import (
    Clone,
    VirtualServicePlan,
    is_opted_out,
    is_owned,
    plan_virtual_services,
    serves_host,
    serves_mesh,
)

NS = "default"
SERVICES = ("echo", "web", "echo-pr1", "echo-pr2", "web-pr3", "ghost")
"""Names in play: origins, clones (of echo, of web), and a Service nobody has."""

names = st.sampled_from(SERVICES)
hosts = st.one_of(
    st.tuples(names, st.sampled_from(["", f".{NS}", f".{NS}.svc", f".{NS}.svc.cluster.local", ".other"])).map("".join),
    st.sampled_from(["*", "*.example.com", "echo.example.com", "ECHO", ""]),
    any_text,
)
ports = st.sampled_from([80, 8080, 9090])


def destination(host: st.SearchStrategy[str] = hosts) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"destination": st.fixed_dictionaries({"host": host}, optional={"port": st.builds(dict, number=ports)})},
        optional={"weight": st.integers(0, 100)},
    )


header_names = st.one_of(
    st.tuples(names, st.sampled_from([NS, "other"])).map(lambda t: contract.routing_header(*t)),
    st.sampled_from(["x-user", "SERVICE-ROUTER-ECHO-DEFAULT", contract.HEADER_PREFIX]),
)
conditions = st.one_of(
    st.builds(dict, exact=st.tuples(names, st.sampled_from([NS, "other"])).map(lambda t: f"{t[0]}.{t[1]}")),
    st.builds(dict, prefix=st.just("echo")),
    st.builds(dict, regex=st.just(".*")),
)
match_blocks = st.fixed_dictionaries(
    {},
    optional={
        "headers": st.dictionaries(header_names, conditions, max_size=2),
        "uri": st.builds(dict, prefix=st.sampled_from(["/", "/api"])),
    },
)
route_names = st.one_of(
    names.map(contract.managed_route_name),
    st.tuples(names, st.integers(1, 3)).map(lambda t: f"{contract.managed_route_name(t[0])}--{t[1]}"),
    st.sampled_from(["default", "canary", contract.MANAGED_ROUTE_PREFIX]),
)


@st.composite
def our_route(draw: st.DrawFn) -> dict[str, Any]:
    """A route the router did write (for a clone that may or may not still exist)."""
    origin, clone = draw(
        st.sampled_from([("echo", "echo-pr1"), ("echo", "echo-pr2"), ("web", "web-pr3"), ("echo", "ghost")])
    )
    return {
        "name": contract.managed_route_name(clone),
        "match": [{"headers": {contract.routing_header(origin, NS): {"exact": contract.routing_value(clone, NS)}}}],
        "route": [{"destination": {"host": contract.service_host(clone, NS)}}],
    }


http_routes = st.one_of(
    our_route(),
    st.fixed_dictionaries(
        {},
        optional={
            "name": route_names,
            "match": st.lists(match_blocks, max_size=2),
            "route": st.lists(destination(), max_size=3),
            "timeout": st.just("5s"),
            "retries": st.just({"attempts": 3}),
            "rewrite": st.just({"uri": "/"}),
            "mirror": st.builds(dict, host=hosts),
        },
    ),
    st.fixed_dictionaries({"name": route_names, "delegate": st.builds(dict, name=names, namespace=st.just(NS))}),
    st.just({"redirect": {"uri": "/moved"}}),
    st.just({"directResponse": {"status": 503}}),
)
tcp_routes = st.lists(st.builds(dict, route=st.lists(destination(), min_size=1, max_size=2)), max_size=2)


@st.composite
def virtual_service(draw: st.DrawFn, index: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": draw(st.sampled_from(["echo", "web", "shared", "echo-service-router"])) + f"-{index}" * (index > 0),
        "namespace": NS,
        "resourceVersion": str(index + 1),
        "creationTimestamp": f"2026-01-0{index + 1}T00:00:00Z",
    }
    if draw(st.booleans()):
        metadata["labels"] = {contract.MANAGED_BY_LABEL: contract.SERVICE_ROUTER_MANAGER}
    annotations = draw(
        st.dictionaries(
            st.sampled_from([contract.VIRTUAL_SERVICE_OPT_OUT_ANNOTATION, contract.GATEWAY_OPT_IN_ANNOTATION]),
            st.sampled_from(["true", "TRUE", "false", ""]),
            max_size=2,
        )
    )
    if annotations:
        metadata["annotations"] = annotations
    spec: dict[str, Any] = {"hosts": draw(st.lists(hosts, min_size=1, max_size=6))}
    if draw(st.booleans()):
        spec["gateways"] = draw(st.lists(st.sampled_from(["mesh", "istio-system/ingress", "gw"]), max_size=2))
    http = draw(st.none() | st.lists(http_routes, max_size=6))
    if http is not None:
        spec["http"] = http
    for key in ("tcp", "tls"):
        if draw(st.booleans()):
            spec[key] = draw(tcp_routes)
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": metadata, "spec": spec}


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    origin = draw(st.sampled_from(["echo", "web", "echo-pr1", "ghost"]))
    clones = [
        Clone(
            service=name,
            namespace=NS,
            origin_service=draw(st.sampled_from([origin, "echo"])),
            ports=draw(st.lists(ports, max_size=2).map(tuple)),
        )
        for name in draw(
            st.lists(st.sampled_from(["echo-pr1", "echo-pr2", "web-pr3", origin]), max_size=3, unique=True)
        )
    ]
    count = draw(st.integers(0, 3))
    return {
        "origin_service": origin,
        "origin_ports": draw(st.lists(ports, max_size=2)),
        "clones": clones,
        "virtual_services": [draw(virtual_service(i)) for i in range(count)],
        "origin_exists": origin != "ghost" and draw(st.booleans() | st.just(True)),
    }


def _plan(world: dict[str, Any]) -> tuple[VirtualServicePlan, ...]:
    return plan_virtual_services(namespace=NS, **world)


def _applied(virtual_services: list[dict[str, Any]], plans: tuple[VirtualServicePlan, ...]) -> list[dict[str, Any]]:
    """The VirtualServices as the API server holds them after the plans' writes."""
    result = copy.deepcopy(virtual_services)
    for plan in plans:
        target = plan.virtual_service
        if plan.action == "none" or target is None:
            continue
        result = [vs for vs in result if vs["metadata"]["name"] != target["metadata"]["name"]]
        if plan.action != "delete":
            written = copy.deepcopy(target)
            written["metadata"]["resourceVersion"] = str(int(written["metadata"].get("resourceVersion") or 0) + 100)
            written["metadata"].setdefault("creationTimestamp", "2026-02-01T00:00:00Z")
            result.append(written)
    return result


def _foreign(vs: dict[str, Any]) -> list[dict[str, Any]]:
    routes = (vs.get("spec") or {}).get("http") or []
    return [
        r
        for r in routes
        if not is_managed_route(r, vs_namespace=NS) and not (is_owned(vs) and r.get("name") == "default")
    ]


@given(worlds())
def test_the_plan_never_raises_touches_no_foreign_route_and_is_idempotent(world: dict[str, Any]) -> None:
    pristine = copy.deepcopy(world)
    plans = _plan(world)
    assert world == pristine, "the planner mutated its input"

    before = {vs["metadata"]["name"]: vs for vs in world["virtual_services"]}
    for plan in plans:
        target = plan.virtual_service
        if plan.action in ("none",) or target is None:
            continue
        if plan.action == "create":
            assert world["origin_exists"], "a VirtualService created for an origin that is no Service"
            assert is_owned(target)
            continue
        observed = before[target["metadata"]["name"]]
        if plan.action == "delete":
            assert is_owned(observed), "deleted a VirtualService the router did not create"
            assert not _foreign(observed), "deleted a VirtualService holding foreign routes"
            continue
        # update: only spec.http may change, and its foreign routes stay as they were, in order
        assert {k: v for k, v in target["spec"].items() if k != "http"} == {
            k: v for k, v in observed["spec"].items() if k != "http"
        }
        assert target["metadata"] == observed["metadata"]
        assert _foreign(target) == _foreign(observed)
        taken = {r.get("name") for r in _foreign(observed)}
        kept = observed["spec"].get("http") or []
        added = {
            r.get("name")
            for r in target["spec"].get("http") or []
            if is_managed_route(r, vs_namespace=NS) and r not in kept
        }
        assert not added & taken, "the router wrote a route under the name of a foreign one"

    # Idempotent: planning on what the plans wrote writes nothing. With several VirtualServices for
    # the origin host (Istio uses one, the router edits the oldest and warns of the rest) each plan
    # handles the one then picked, so it takes a step per VirtualService, never more.
    state = _applied(world["virtual_services"], plans)
    steps = 1 if _candidates(world) <= 1 else len(world["virtual_services"])
    for _ in range(steps):
        again = _plan({**world, "virtual_services": state})
        if all(p.action == "none" for p in again):
            break
        state = _applied(state, again)
    else:
        raise AssertionError(f"no steady state after {steps} step(s): {[(p.action, _name(p)) for p in again]}")


def _name(plan: VirtualServicePlan) -> str:
    return str(((plan.virtual_service or {}).get("metadata") or {}).get("name"))


def _candidates(world: dict[str, Any]) -> int:
    """VirtualServices that could each be the one for the origin host (mesh, not opted out)."""
    return sum(
        serves_host(vs, service=world["origin_service"], namespace=NS) and serves_mesh(vs) and not is_opted_out(vs)
        for vs in world["virtual_services"]
    )


@given(worlds())
def test_a_missing_origin_gains_no_clone(world: dict[str, Any]) -> None:
    """An annotation naming no Service creates nothing and routes no clone that was not routed already.

    (Already routed anywhere, as ``routed_by`` sees it: a clone routed in an opted-out or a gateway
    VirtualService may gain its route in the mesh one. Harmless - the clone exists - and what the
    README promises: routes standing for a missing origin are kept.)
    """
    world = {**world, "origin_exists": False}
    header = contract.routing_header(world["origin_service"], NS)
    before = {c for vs in world["virtual_services"] for c in routed_clones(_http(vs), header=header, vs_namespace=NS)}
    for plan in _plan(world):
        assert plan.action != "create"
        assert set(plan.routed_clones) <= before, "a missing origin gained a routed clone"


def _http(vs: dict[str, Any]) -> list[dict[str, Any]]:
    return list((vs.get("spec") or {}).get("http") or [])


def test_a_route_of_ours_for_another_origin_is_never_copied() -> None:
    """Found by the fuzzer: a Service annotated as its own origin (``echo-pr1`` -> ``echo-pr1``) in a
    VirtualService holding echo's route to it. The copy of echo's route carried both routing headers,
    proved to be echo's, and was copied again on every plan: one more route per reconcile."""
    echo_route = {
        "name": "service-router--echo-pr1",
        "match": [{"headers": {contract.routing_header("echo", NS): {"exact": "echo-pr1.default"}}}],
        "route": [{"destination": {"host": "echo-pr1.default.svc.cluster.local"}}],
    }
    state = [
        {
            "metadata": {"name": "echo", "namespace": NS, "resourceVersion": "1"},
            "spec": {"hosts": ["echo-pr1"], "http": [echo_route]},
        }
    ]
    world = {
        "origin_service": "echo-pr1",
        "origin_ports": [],
        "clones": [Clone(service="echo-pr1", namespace=NS, origin_service="echo-pr1")],
        "origin_exists": True,
    }
    for _ in range(3):
        state = _applied(state, _plan({**world, "virtual_services": state}))
    assert state[0]["spec"]["http"] == [echo_route]
