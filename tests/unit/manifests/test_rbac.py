"""Least privilege, proven: each controller's RBAC grants exactly what its code calls.

How: an AST scan finds every call on a Kubernetes client (``client.<verb>(...)``,
``self.client.<verb>(...)``) and every informer (``manager.informer(...)``) in the code that
ships in each image (``common/`` plus that controller). Each call site must be in ``CALL_SITES``
below, which says which API resources it reaches, so a new API call fails this test until it is
mapped here and granted in ``manifests/<controller>/rbac.yaml``. From the table we derive what
each controller needs and check the rendered RBAC both ways: everything needed is granted, and
nothing else is (read verbs get/list/watch are granted as a family on resources that are read).

The mapping, code -> rules (K = KubeClient method -> RBAC verb: get, list, watch, create,
replace -> update, patch, delete):

=========================  ================================  =======================================
controller                 code                              rule
=========================  ================================  =======================================
both                       informer.py list + watch          list, watch on every informed resource
both                       leader.py get/create/replace      leases get, create, update (own ns, Lease
                                                             named like the controller)
both                       events.py create                  events create (namespace of the object)
replicator                 __main__ informers                deployments, services: list, watch
replicator                 reconcile.py create/replace/      deployments, services: create, update,
                           delete on RESOURCES[kind]         delete (clones)
replicator                 leader_pod.py list/patch PODS     pods list, patch (own namespace only: the
                                                             leader labels its own Pod for the
                                                             webhook Service, clears stale labels)
service-router             __main__ informers                services, virtualservices: list, watch
service-router             reconcile.py create/replace/      virtualservices: create, update, delete
                           delete on the VS resource
service-router             reconcile.py patch SERVICES       services: patch (its finalizer)
service-router             reconcile.py get/list on the VS   virtualservices: get, list (fresh reads
                           resource                          before a write)
service-router             cli.py (routes helper) list       services, virtualservices, deployments:
                                                             list (deployments only read, for the
                                                             clones' readiness)
service-router             header_cli.py get SERVICES        services: get (does the clone exist?)
service-router             __main__ Gateway API informers     httproutes, grpcroutes: list, watch
service-router             gateway_reconcile.py create/       httproutes, grpcroutes: create, update,
                           replace/delete/list on the route   delete, list (derived and baseline
                           resource; patch SERVICES           routes; fresh reads); services: patch
service-router             uninstall.py (uninstall helper)   services: list, patch; virtualservices:
                                                             list, update, delete (a subset of the
                                                             controller's own grants)
=========================  ================================  =======================================

Not RBAC-controlled: ``server_preferred_version`` (``GET /apis/networking.istio.io``) is API
discovery, which the default ``system:discovery`` ClusterRole allows every authenticated user.
The replicator never names VirtualServices; the service-router never writes Deployments.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from shared_data import REPO_ROOT

Render = Callable[[str], list[dict[str, Any]]]
Resource = tuple[str, str]  # (API group, plural)

DEPLOYMENTS: Resource = ("apps", "deployments")
SERVICES: Resource = ("", "services")
EVENTS: Resource = ("", "events")
LEASES: Resource = ("coordination.k8s.io", "leases")
VIRTUAL_SERVICES: Resource = ("networking.istio.io", "virtualservices")
GATEWAY_ROUTES: frozenset[Resource] = frozenset(
    {("gateway.networking.k8s.io", "httproutes"), ("gateway.networking.k8s.io", "grpcroutes")}
)
PODS: Resource = ("", "pods")
# Reached only in the controller's own namespace (where its Deployment runs), never where it watches.
OWN_NAMESPACE: frozenset[Resource] = frozenset({LEASES, PODS})

CLIENT_VERBS = {
    "get": "get",
    "list": "list",
    "watch": "watch",
    "create": "create",
    "replace": "update",
    "replace_status": "update",
    "patch": "patch",
    "delete": "delete",
}
READ_VERBS = frozenset({"get", "list", "watch"})
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
INFORMED = "every resource the controller runs an informer on"

# Every client call site in shipped code: (file, client method, first argument as written) ->
# the resources it reaches. Keep in step with the mapping in the module docstring.
CALL_SITES: dict[tuple[str, str, str], frozenset[Resource] | str] = {
    ("common/src/controller_common/informer.py", "list", "self.resource"): INFORMED,
    ("common/src/controller_common/informer.py", "watch", "self.resource"): INFORMED,
    ("common/src/controller_common/leader.py", "get", "LEASES"): frozenset({LEASES}),
    ("common/src/controller_common/leader.py", "create", "LEASES"): frozenset({LEASES}),
    ("common/src/controller_common/leader.py", "replace", "LEASES"): frozenset({LEASES}),
    ("common/src/controller_common/events.py", "create", "EVENTS"): frozenset({EVENTS}),
    ("replicator/src/replicator/reconcile.py", "create", "RESOURCES[obj['kind']]"): frozenset({DEPLOYMENTS, SERVICES}),
    ("replicator/src/replicator/reconcile.py", "replace", "RESOURCES[obj['kind']]"): frozenset({DEPLOYMENTS, SERVICES}),
    ("replicator/src/replicator/reconcile.py", "delete", "RESOURCES[obj['kind']]"): frozenset({DEPLOYMENTS, SERVICES}),
    ("replicator/src/replicator/leader_pod.py", "list", "PODS"): frozenset({PODS}),
    ("replicator/src/replicator/leader_pod.py", "patch", "PODS"): frozenset({PODS}),
    ("service-router/src/service_router/reconcile.py", "create", "resource"): frozenset({VIRTUAL_SERVICES}),
    ("service-router/src/service_router/reconcile.py", "replace", "resource"): frozenset({VIRTUAL_SERVICES}),
    ("service-router/src/service_router/reconcile.py", "delete", "resource"): frozenset({VIRTUAL_SERVICES}),
    ("service-router/src/service_router/reconcile.py", "patch", "SERVICES"): frozenset({SERVICES}),
    ("service-router/src/service_router/reconcile.py", "get", "self.virtual_service_resource"): frozenset(
        {VIRTUAL_SERVICES}
    ),
    ("service-router/src/service_router/reconcile.py", "list", "self.virtual_service_resource"): frozenset(
        {VIRTUAL_SERVICES}
    ),
    ("service-router/src/service_router/gateway_reconcile.py", "create", "resource"): GATEWAY_ROUTES,
    ("service-router/src/service_router/gateway_reconcile.py", "replace", "resource"): GATEWAY_ROUTES,
    ("service-router/src/service_router/gateway_reconcile.py", "delete", "resource"): GATEWAY_ROUTES,
    ("service-router/src/service_router/gateway_reconcile.py", "list", "resource"): GATEWAY_ROUTES,
    ("service-router/src/service_router/gateway_reconcile.py", "patch", "SERVICES"): frozenset({SERVICES}),
    ("service-router/src/service_router/cli.py", "list", "SERVICES"): frozenset({SERVICES}),
    ("service-router/src/service_router/cli.py", "list", "vs_resource"): frozenset({VIRTUAL_SERVICES}),
    ("service-router/src/service_router/cli.py", "list", "DEPLOYMENTS"): frozenset({DEPLOYMENTS}),
    ("service-router/src/service_router/header_cli.py", "get", "SERVICES"): frozenset({SERVICES}),
    ("service-router/src/service_router/uninstall.py", "list", "virtual_service_resource"): frozenset(
        {VIRTUAL_SERVICES}
    ),
    ("service-router/src/service_router/uninstall.py", "list", "SERVICES"): frozenset({SERVICES}),
    ("service-router/src/service_router/uninstall.py", "replace", "resource"): frozenset({VIRTUAL_SERVICES}),
    ("service-router/src/service_router/uninstall.py", "delete", "resource"): frozenset({VIRTUAL_SERVICES}),
    ("service-router/src/service_router/uninstall.py", "patch", "SERVICES"): frozenset({SERVICES}),
}
INFORMERS: dict[tuple[str, str], Resource] = {
    ("replicator/src/replicator/__main__.py", "DEPLOYMENTS"): DEPLOYMENTS,
    ("replicator/src/replicator/__main__.py", "SERVICES"): SERVICES,
    ("service-router/src/service_router/__main__.py", "SERVICES"): SERVICES,
    ("service-router/src/service_router/__main__.py", "vs_resource"): VIRTUAL_SERVICES,
    ("service-router/src/service_router/__main__.py", "apis.http_routes"): ("gateway.networking.k8s.io", "httproutes"),
    ("service-router/src/service_router/__main__.py", "apis.grpc_routes"): ("gateway.networking.k8s.io", "grpcroutes"),
}
SOURCES = {
    "replicator": ("common/src/controller_common", "replicator/src/replicator"),
    "service-router": ("common/src/controller_common", "service-router/src/service_router"),
}
# What each controller must never be able to do, whatever else changes.
FORBIDDEN: dict[str, list[tuple[str, Resource]]] = {
    "replicator": [(verb, VIRTUAL_SERVICES) for verb in (*sorted(WRITE_VERBS), "get", "list", "watch")],
    "service-router": [(verb, DEPLOYMENTS) for verb in sorted(WRITE_VERBS)],
}
CONTROLLERS = tuple(SOURCES)


# --- what the code calls ---------------------------------------------------------------------


def _receiver_is_client(node: ast.expr) -> bool:
    text = ast.unparse(node)
    return text == "client" or text.endswith(".client")


def scan(controller: str) -> tuple[set[tuple[str, str, str]], set[tuple[str, str]]]:
    """(client call sites, informer call sites) in the files that ship in ``controller``'s image."""
    calls: set[tuple[str, str, str]] = set()
    informers: set[tuple[str, str]] = set()
    for folder in SOURCES[controller]:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            relative = str(path.relative_to(REPO_ROOT))
            for node in ast.walk(ast.parse(path.read_text(), relative)):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
                    continue
                method, first = node.func.attr, ast.unparse(node.args[0])
                if method in CLIENT_VERBS and _receiver_is_client(node.func.value):
                    calls.add((relative, method, first))
                elif method == "informer" and ast.unparse(node.func.value) == "manager":
                    informers.add((relative, first))
    return calls, informers


def needed(controller: str) -> set[tuple[str, Resource]]:
    """(verb, resource) pairs the controller's code calls, from the scan and the tables."""
    calls, informers = scan(controller)
    informed = {INFORMERS[site] for site in informers}
    result: set[tuple[str, Resource]] = set()
    for site in calls:
        reached = CALL_SITES[site]
        for resource in informed if reached == INFORMED else reached:
            result.add((CLIENT_VERBS[site[1]], resource))
    return result


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_every_client_call_in_the_code_is_mapped_to_rbac(controller: str) -> None:
    """A new API call fails here until CALL_SITES says what it reaches and rbac.yaml grants it."""
    calls, informers = scan(controller)
    assert calls - CALL_SITES.keys() == set(), "unmapped client calls: add them to CALL_SITES and rbac.yaml"
    assert informers - INFORMERS.keys() == set(), "unmapped informers: add them to INFORMERS and rbac.yaml"
    assert informers, "the scan found no informer: is it still looking at the right code?"


def test_every_mapped_call_site_still_exists() -> None:
    """The table does not keep grants alive for calls the code no longer makes."""
    found = set().union(*(scan(c)[0] for c in CONTROLLERS))
    informers = set().union(*(scan(c)[1] for c in CONTROLLERS))
    assert CALL_SITES.keys() - found == set()
    assert INFORMERS.keys() - informers == set()


# --- what the manifests grant ----------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    namespace: str  # "*" for a ClusterRole bound cluster-wide
    groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    names: tuple[str, ...]  # resourceNames; empty means any

    def allows(self, verb: str, resource: Resource, namespace: str, name: str | None = None) -> bool:
        group, plural = resource
        return (
            self.namespace in ("*", namespace)
            and (group in self.groups or "*" in self.groups)
            and (plural in self.resources or "*" in self.resources)
            and (verb in self.verbs or "*" in self.verbs)
            and (not self.names or name in self.names)
        )


def grants(objects: list[dict[str, Any]], account: str, account_namespace: str) -> list[Grant]:
    """What ``account`` may do, from the Roles, ClusterRoles and bindings among ``objects``."""
    roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects}
    result = []
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subject = {"kind": "ServiceAccount", "name": account, "namespace": account_namespace}
        if subject not in binding["subjects"]:
            continue
        ref = binding["roleRef"]
        scope = binding["metadata"].get("namespace", "*") if binding["kind"] == "RoleBinding" else "*"
        role_namespace = scope if ref["kind"] == "Role" else ""
        role = roles[(ref["kind"], role_namespace, ref["name"])]
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule
            result.append(
                Grant(
                    namespace=scope,
                    groups=tuple(rule["apiGroups"]),
                    resources=tuple(rule["resources"]),
                    verbs=tuple(rule["verbs"]),
                    names=tuple(rule.get("resourceNames", ())),
                )
            )
    return result


def granted_pairs(grant_list: list[Grant]) -> Iterator[tuple[str, Resource]]:
    for grant in grant_list:
        for group in grant.groups:
            for plural in grant.resources:
                for verb in grant.verbs:
                    yield verb, (group, plural)


def _deployment(objects: list[dict[str, Any]], controller: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == controller)


def _args(deployment: dict[str, Any]) -> list[str]:
    return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])


def _flag_values(deployment: dict[str, Any], flag: str) -> list[str]:
    return [a.split("=", 1)[1] for a in _args(deployment) if a.startswith(f"{flag}=")]


def _identity(objects: list[dict[str, Any]], controller: str) -> tuple[str, str]:
    deployment = _deployment(objects, controller)
    return deployment["spec"]["template"]["spec"]["serviceAccountName"], deployment["metadata"]["namespace"]


def _watched_namespaces(objects: list[dict[str, Any]], controller: str) -> list[str]:
    return _flag_values(_deployment(objects, controller), "--namespace") or ["*"]


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("install", ["base", "overlays/namespaced", "."])
def test_everything_the_code_calls_is_granted(controller: str, install: str, render: Render) -> None:
    objects = render(controller if install == "base" else install)
    account, home = _identity(objects, controller)
    grant_list = grants(objects, account, home)
    watched = _watched_namespaces(objects, controller)
    lease = (_flag_values(_deployment(objects, controller), "--leader-election-id") or [controller])[0]
    missing = []
    for verb, resource in sorted(needed(controller)):
        if resource in OWN_NAMESPACE:  # its own Lease and Pods, in its own namespace
            name = lease if resource == LEASES and verb != "create" else None
            if not any(g.allows(verb, resource, home, name) for g in grant_list):
                missing.append((verb, resource, home))
            continue
        for namespace in watched:
            if not any(g.allows(verb, resource, namespace) for g in grant_list):
                missing.append((verb, resource, namespace))
    assert missing == []


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("install", ["base", "overlays/namespaced"])
def test_nothing_is_granted_that_the_code_does_not_call(controller: str, install: str, render: Render) -> None:
    """Writes exactly as called; reads (get/list/watch) only on resources the code reads."""
    objects = render(controller if install == "base" else install)
    grant_list = grants(objects, *_identity(objects, controller))
    need = needed(controller)
    read = {resource for verb, resource in need if verb in READ_VERBS}
    extra = {
        (verb, resource)
        for verb, resource in granted_pairs(grant_list)
        if (verb, resource) not in need and not (verb in READ_VERBS and resource in read)
    }
    assert extra == set()
    wildcards = [g for g in grant_list if "*" in (*g.groups, *g.resources, *g.verbs)]
    assert wildcards == []


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("install", ["base", "overlays/namespaced", "."])
def test_the_controller_cannot_do_what_belongs_to_the_other(controller: str, install: str, render: Render) -> None:
    """The replicator cannot touch VirtualServices; the service-router cannot write Deployments."""
    objects = render(controller if install == "base" else install)
    grant_list = grants(objects, *_identity(objects, controller))
    allowed = [
        (verb, resource)
        for verb, resource in FORBIDDEN[controller]
        if any(g.allows(verb, resource, ns, "x") for g in grant_list for ns in ("default", "team-a", "kube-system"))
    ]
    assert allowed == []


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_lease_grants_are_limited_to_its_own_lease(controller: str, render: Render) -> None:
    objects = render(controller)
    account, home = _identity(objects, controller)
    lease_grants = [g for g in grants(objects, account, home) if "leases" in g.resources]
    assert lease_grants and all(g.namespace == home for g in lease_grants)
    assert all(g.names == (controller,) for g in lease_grants if set(g.verbs) - {"create"})
    # The Lease namespace the process uses is the pod's own (--leader-election-namespace default).
    container = _deployment(objects, controller)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container["env"]}
    assert env["POD_NAMESPACE"] == "metadata.namespace"
    assert "--leader-elect" in container["args"]


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("install", ["base", "overlays/namespaced", "."])
def test_pod_grants_are_limited_to_its_own_namespace(controller: str, install: str, render: Render) -> None:
    """Only the replicator touches Pods (its own, for the webhook Service), and nowhere else."""
    objects = render(controller if install == "base" else install)
    account, home = _identity(objects, controller)
    pod_grants = [g for g in grants(objects, account, home) if "pods" in g.resources]
    if controller != "replicator":
        assert pod_grants == []
        return
    assert pod_grants and all(g.namespace == home for g in pod_grants)
    assert sorted(v for g in pod_grants for v in g.verbs) == ["list", "patch"]
    container = _deployment(objects, controller)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container["env"]}
    assert env["POD_NAME"] == "metadata.name" and env["POD_NAMESPACE"] == "metadata.namespace"


def test_the_namespaced_install_has_no_cluster_wide_grants(render: Render) -> None:
    kinds = {o["kind"] for o in render("overlays/namespaced")}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_the_namespaced_install_grants_the_base_rules_in_exactly_the_watched_namespaces(
    controller: str, render: Render
) -> None:
    base_rules = next(
        o["rules"] for o in render(controller) if o["kind"] == "ClusterRole" and o["metadata"]["name"] == controller
    )
    objects = render("overlays/namespaced")
    account, home = _identity(objects, controller)
    roles = {
        o["metadata"]["namespace"]: o["rules"]
        for o in objects
        if o["kind"] == "Role" and o["metadata"]["name"] == controller
    }
    assert all(rules == base_rules for rules in roles.values())
    bound = {
        o["metadata"]["namespace"]
        for o in objects
        if o["kind"] == "RoleBinding"
        and o["roleRef"]["name"] == controller
        and {"kind": "ServiceAccount", "name": account, "namespace": home} in o["subjects"]
    }
    watched = _watched_namespaces(objects, controller)
    assert sorted(roles) == sorted(bound) == sorted(watched)
    assert home not in watched


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_the_bound_service_account_is_the_one_the_pods_run_as(controller: str, render: Render) -> None:
    objects = render(controller)
    account, home = _identity(objects, controller)
    assert any(
        o["kind"] == "ServiceAccount" and o["metadata"]["name"] == account and o["metadata"]["namespace"] == home
        for o in objects
    )
    subjects = [s for o in objects if o["kind"].endswith("RoleBinding") for s in o["subjects"]]
    assert subjects and all(s == {"kind": "ServiceAccount", "name": account, "namespace": home} for s in subjects)
