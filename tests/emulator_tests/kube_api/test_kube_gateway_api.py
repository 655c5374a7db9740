"""The Gateway API's own CRDs (../shared) served by the emulator: their CEL rules reject what
kube-apiserver rejects, with its words, and their defaults fill in what a real server fills in."""

from __future__ import annotations

import copy
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from emulators.kube_api import KubeApiServer, cel
from emulators.kube_api.crds import GATEWAY_API_KINDS, gateway_api_crd_paths

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not gateway_api_crd_paths(), reason="../shared/schemas/gateway-api is absent (plain clone)"),
]

GROUP, VERSION = "gateway.networking.k8s.io", "v1"
PLURALS = {
    "Gateway": "gateways",
    "HTTPRoute": "httproutes",
    "GRPCRoute": "grpcroutes",
    "GatewayClass": "gatewayclasses",
}


@pytest.fixture
def gateway_api(server: KubeApiServer) -> KubeApiServer:
    server.apply_gateway_api_crds()
    return server


def gateway() -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Gateway",
        "metadata": {"name": "x"},
        "spec": {"gatewayClassName": "istio", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
    }


def http_route() -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": "x"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "hostnames": ["pr-1.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [{"name": "svc", "port": 80}],
                }
            ],
        },
    }


def grpc_route() -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GRPCRoute",
        "metadata": {"name": "x"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [
                {
                    "matches": [{"method": {"service": "shop.Cart", "method": "Add"}}],
                    "backendRefs": [{"name": "svc", "port": 9000}],
                }
            ],
        },
    }


def create(custom: client.CustomObjectsApi, body: dict[str, Any]) -> dict[str, Any]:
    plural = PLURALS[body["kind"]]
    if body["kind"] == "GatewayClass":
        return custom.create_cluster_custom_object(GROUP, VERSION, plural, body)  # type: ignore[no-any-return]
    return custom.create_namespaced_custom_object(GROUP, VERSION, "default", plural, body)  # type: ignore[no-any-return]


Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Edit:
    """An edit that sets ``spec.<path>`` (dots and list indexes) to ``value``."""

    def edit(obj: dict[str, Any]) -> None:
        node: Any = obj["spec"]
        parts = [int(p) if p.isdigit() else p for p in path.split(".")]
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = copy.deepcopy(value)

    return edit


def _path(value: str, kind: str = "PathPrefix") -> Edit:
    return _set("rules.0.matches.0.path", {"type": kind, "value": value})


HEADER_MOD = {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-pr", "value": "1"}]}}
REWRITE_PREFIX = {
    "type": "URLRewrite",
    "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
}
TLS_TERMINATE = {"mode": "Terminate", "certificateRefs": [{"name": "cert"}]}
CASES: list[tuple[str, Callable[[], dict[str, Any]], Edit, Edit, str]] = [
    # (id, base object, edit that breaks one rule, edit that keeps to it, kube-apiserver's cause)
    (
        "path-absolute",
        http_route,
        _path("api"),
        _path("/api"),
        "spec.rules[0].matches[0].path: Invalid value: \"object\": value must be an absolute path and start with '/' "
        "when type one of ['Exact', 'PathPrefix']",
    ),
    (
        "path-no-double-slash",
        http_route,
        _path("/a//b", "Exact"),
        _path("/a/b", "Exact"),
        "spec.rules[0].matches[0].path: Invalid value: \"object\": must not contain '//' when type one of "
        "['Exact', 'PathPrefix']",
    ),
    (
        "path-no-dot-dot-suffix",
        http_route,
        _path("/a/.."),
        _path("/a/..b"),
        "spec.rules[0].matches[0].path: Invalid value: \"object\": must not end with '/..' when type one of "
        "['Exact', 'PathPrefix']",
    ),
    (
        "path-valid-characters",
        http_route,
        _path("/a%zz"),
        _path("/a%2a"),
        'spec.rules[0].matches[0].path: Invalid value: "object": must only contain valid characters (matching '
        "^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) for types ['Exact', 'PathPrefix']",
    ),
    (
        "service-backend-needs-port",
        http_route,
        _set("rules.0.backendRefs", [{"name": "svc"}]),
        _set("rules.0.backendRefs", [{"name": "svc", "port": 8080}]),
        'spec.rules[0].backendRefs[0]: Invalid value: "object": Must have port for Service reference',
    ),
    (
        "filter-needs-its-config",
        http_route,
        _set("rules.0.filters", [{"type": "RequestHeaderModifier"}]),
        _set("rules.0.filters", [HEADER_MOD]),
        'spec.rules[0].filters[0]: Invalid value: "object": filter.requestHeaderModifier must be specified for '
        "RequestHeaderModifier filter.type",
    ),
    (
        "filter-config-matches-type",
        http_route,
        _set("rules.0.filters", [{**HEADER_MOD, "type": "ResponseHeaderModifier", "responseHeaderModifier": {}}]),
        _set("rules.0.filters", [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {}}]),
        'spec.rules[0].filters[0]: Invalid value: "object": filter.requestHeaderModifier must be nil if the '
        "filter.type is not RequestHeaderModifier",
    ),
    (
        "filter-not-repeated",
        http_route,
        _set("rules.0.filters", [HEADER_MOD, HEADER_MOD]),
        _set("rules.0.filters", [HEADER_MOD]),
        'spec.rules[0].filters: Invalid value: "array": RequestHeaderModifier filter cannot be repeated',
    ),
    (
        "rewrite-prefix-needs-one-prefix-match",
        http_route,
        lambda o: (_path("/a", "Exact")(o), _set("rules.0.filters", [REWRITE_PREFIX])(o)),
        _set("rules.0.filters", [REWRITE_PREFIX]),
        'spec.rules[0]: Invalid value: "object": When using URLRewrite filter with path.replacePrefixMatch, '
        "exactly one PathPrefix match must be specified",
    ),
    (
        "rewrite-type-needs-its-field",
        http_route,
        _set("rules.0.filters", [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch"}}}]),
        _set("rules.0.filters", [REWRITE_PREFIX]),
        'spec.rules[0].filters[0].urlRewrite.path: Invalid value: "object": replacePrefixMatch must be specified '
        "when type is set to 'ReplacePrefixMatch'",
    ),
    (
        "backend-timeout-within-request-timeout",
        http_route,
        _set("rules.0.timeouts", {"request": "10s", "backendRequest": "20s"}),
        _set("rules.0.timeouts", {"request": "10s", "backendRequest": "5s"}),
        'spec.rules[0].timeouts: Invalid value: "object": backendRequest timeout cannot be longer than request timeout',
    ),
    (
        "section-name-when-same-parent-twice",
        http_route,
        _set("parentRefs", [{"name": "gw"}, {"name": "gw", "sectionName": "https"}]),
        _set("parentRefs", [{"name": "gw", "sectionName": "http"}, {"name": "gw", "sectionName": "https"}]),
        'spec.parentRefs: Invalid value: "array": sectionName must be specified when parentRefs includes 2 or more '
        "references to the same parent",
    ),
    (
        "listener-names-unique",
        gateway,
        _set(
            "listeners", [{"name": "l", "port": 80, "protocol": "HTTP"}, {"name": "l", "port": 81, "protocol": "HTTP"}]
        ),
        _set(
            "listeners", [{"name": "l", "port": 80, "protocol": "HTTP"}, {"name": "m", "port": 81, "protocol": "HTTP"}]
        ),
        'spec.listeners: Invalid value: "array": Listener name must be unique within the Gateway',
    ),
    (
        "listener-port-protocol-hostname-unique",
        gateway,
        _set(
            "listeners", [{"name": "a", "port": 80, "protocol": "HTTP"}, {"name": "b", "port": 80, "protocol": "HTTP"}]
        ),
        _set(
            "listeners",
            [
                {"name": "a", "port": 80, "protocol": "HTTP"},
                {"name": "b", "port": 80, "protocol": "HTTP", "hostname": "b.example.com"},
            ],
        ),
        'spec.listeners: Invalid value: "array": Combination of port, protocol and hostname must be unique for each '
        "listener",
    ),
    (
        "no-tls-on-http",
        gateway,
        _set("listeners.0.tls", TLS_TERMINATE),
        _set("listeners", [{"name": "https", "port": 443, "protocol": "HTTPS", "tls": TLS_TERMINATE}]),
        "spec.listeners: Invalid value: \"array\": tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']",
    ),
    (
        "terminate-needs-certificates",
        gateway,
        _set("listeners", [{"name": "https", "port": 443, "protocol": "HTTPS", "tls": {"mode": "Terminate"}}]),
        _set("listeners", [{"name": "https", "port": 443, "protocol": "HTTPS", "tls": TLS_TERMINATE}]),
        # The rule reads self.certificateRefs without has(): on a real server too that is an evaluation
        # error, not false, so the message is wrapped.
        'spec.listeners[0].tls: Invalid value: "object": no such key: certificateRefs evaluating rule: '
        "certificateRefs or options must be specified when mode is Terminate",
    ),
    (
        "grpc-method-match-names-something",
        grpc_route,
        _set("rules.0.matches.0.method", {"type": "Exact"}),
        _set("rules.0.matches.0.method", {"type": "Exact", "service": "shop.Cart"}),
        "spec.rules[0].matches[0].method: Invalid value: \"object\": One or both of 'service' or 'method' must be "
        "specified",
    ),
    (
        "grpc-service-characters",
        grpc_route,
        _set("rules.0.matches.0.method.service", "shop/Cart"),
        _set("rules.0.matches.0.method.service", "SHOP.cart_v1"),
        'spec.rules[0].matches[0].method: Invalid value: "object": service must only contain valid characters '
        r"(matching ^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$)",
    ),
]


@pytest.mark.parametrize(("base", "bad", "good", "cause"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_gateway_api_rule_rejects_with_kube_apiserver_text_and_accepts_the_fix(
    gateway_api: KubeApiServer,
    custom: client.CustomObjectsApi,
    base: Callable[[], dict[str, Any]],
    bad: Edit,
    good: Edit,
    cause: str,
) -> None:
    rejected = base()
    bad(rejected)
    with pytest.raises(ApiException) as err:
        create(custom, rejected)
    status = json.loads(err.value.body)
    assert (err.value.status, status["reason"]) == (422, "Invalid")
    assert status["message"] == f'{rejected["kind"]}.{GROUP} "x" is invalid: {cause}'
    accepted = base()
    good(accepted)
    assert create(custom, accepted)["metadata"]["name"] == "x"


def test_gateway_api_crds_register_the_standard_kinds(gateway_api: KubeApiServer) -> None:
    kinds = {rt.kind for rt in gateway_api.registry.all() if rt.group == GROUP and rt.version == "v1"}
    assert set(GATEWAY_API_KINDS) - {"ReferenceGrant"} <= kinds
    assert any(rt.kind == "ReferenceGrant" for rt in gateway_api.registry.all() if rt.group == GROUP)


def test_several_broken_rules_are_all_reported(gateway_api: KubeApiServer, custom: client.CustomObjectsApi) -> None:
    route = http_route()
    _path("api")(route)
    route["spec"]["rules"][0]["backendRefs"] = [{"name": "svc"}]
    with pytest.raises(ApiException) as err:
        create(custom, route)
    fields = [c["field"] for c in json.loads(err.value.body)["details"]["causes"]]
    assert fields == ["spec.rules[0].matches[0].path", "spec.rules[0].backendRefs[0]"]


def test_controller_name_is_immutable_through_the_oldself_transition_rule(
    gateway_api: KubeApiServer, custom: client.CustomObjectsApi
) -> None:
    gc = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GatewayClass",
        "metadata": {"name": "x"},
        "spec": {"controllerName": "example.com/a"},
    }
    stored = create(custom, gc)  # no old value on create: the transition rule does not run
    stored["spec"]["description"] = "changed"
    stored = custom.replace_cluster_custom_object(GROUP, VERSION, "gatewayclasses", "x", stored)
    stored["spec"]["controllerName"] = "example.com/b"
    with pytest.raises(ApiException) as err:
        custom.replace_cluster_custom_object(GROUP, VERSION, "gatewayclasses", "x", stored)
    assert json.loads(err.value.body)["message"] == (
        f'GatewayClass.{GROUP} "x" is invalid: spec.controllerName: Invalid value: "string": Value is immutable'
    )


def test_defaults_from_the_schema_are_stored(gateway_api: KubeApiServer, custom: client.CustomObjectsApi) -> None:
    route = http_route()
    del route["spec"]["rules"][0]["matches"]
    stored = create(custom, route)
    assert stored["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert stored["spec"]["rules"][0]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "svc", "port": 80, "weight": 1}
    ]
    assert stored["spec"]["parentRefs"] == [{"group": GROUP, "kind": "Gateway", "name": "gw"}]
    listener = create(custom, gateway())["spec"]["listeners"][0]
    assert listener["allowedRoutes"] == {"namespaces": {"from": "Same"}}


def test_defaults_also_fill_an_update(gateway_api: KubeApiServer, custom: client.CustomObjectsApi) -> None:
    stored = create(custom, http_route())
    stored["spec"]["rules"].append({"backendRefs": [{"name": "other", "port": 80}]})
    updated = custom.replace_namespaced_custom_object(GROUP, VERSION, "default", "httproutes", "x", stored)
    assert updated["spec"]["rules"][1]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]


def test_a_typical_create_with_all_its_rules_costs_well_under_20ms(gateway_api: KubeApiServer) -> None:
    """CPU time of this thread, not wall time: the machine is shared, and contention is not our cost."""
    rt = gateway_api.registry.lookup(GROUP, VERSION, "httproutes")
    assert rt is not None and rt.schema is not None
    assert cel.validator_for(rt.schema) is cel.validator_for(rt.schema)  # compiled once per CRD version
    route = http_route()
    route["spec"]["rules"] = [
        {
            "matches": [
                {"path": {"type": "PathPrefix", "value": f"/api/{i}"}, "headers": [{"name": "x-pr", "value": str(i)}]}
            ],
            "filters": [HEADER_MOD],
            "backendRefs": [{"name": f"svc-{i}", "port": 80}],
        }
        for i in range(8)
    ]
    creates, rules = [], []
    for i in range(30):
        body = copy.deepcopy(route)
        body["metadata"]["name"] = f"r{i}"
        start = time.thread_time()
        stored = gateway_api.api.create(rt, "default", body, {})[0]
        creates.append(time.thread_time() - start)
        start = time.thread_time()
        assert cel.check(rt.schema, stored).causes == []
        rules.append(time.thread_time() - start)
    assert statistics.median(creates) < 0.020, creates
    assert statistics.median(rules) < 0.010, rules
