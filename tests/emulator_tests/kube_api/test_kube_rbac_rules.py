"""RBAC decisions as pure functions, table-driven: rule matching, subjects, bindings, messages.

Each row is what kube-apiserver's RBAC authorizer decides for the same rule and request
(``rbacv1helpers.RuleAllows``, ``appliesToUser``, ``responsewriters.Forbidden``).
"""

from __future__ import annotations

from typing import Any

import pytest

from emulators.kube_api.rbac import (
    ADMIN_USER,
    ANONYMOUS_USER,
    Attributes,
    Policy,
    UserInfo,
    decide,
    forbidden,
    rule_allows,
    service_account_user,
    subject_applies,
)
from emulators.kube_api.routing import resolve

DEPLOY_RULE = {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "update"]}
LEASE_BY_NAME = {
    "apiGroups": ["coordination.k8s.io"],
    "resources": ["leases"],
    "resourceNames": ["replicator"],
    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
}


def _req(method: str, path: str, query: dict[str, str] | None = None) -> Attributes:
    return Attributes.of(resolve(method, path, query or {}))


DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/ns/leases"

RULE_CASES: list[tuple[str, dict[str, Any], Attributes, bool]] = [
    ("verb listed", DEPLOY_RULE, _req("GET", f"{DEPLOYMENTS}/x"), True),
    ("list", DEPLOY_RULE, _req("GET", DEPLOYMENTS), True),
    ("watch=true is watch", DEPLOY_RULE, _req("GET", DEPLOYMENTS, {"watch": "true"}), True),
    ("PUT is update", DEPLOY_RULE, _req("PUT", f"{DEPLOYMENTS}/x"), True),
    ("PATCH is patch, not listed", DEPLOY_RULE, _req("PATCH", f"{DEPLOYMENTS}/x"), False),
    ("POST is create, not listed", DEPLOY_RULE, _req("POST", DEPLOYMENTS), False),
    ("DELETE is delete, not listed", DEPLOY_RULE, _req("DELETE", f"{DEPLOYMENTS}/x"), False),
    (
        "DELETE on a collection is deletecollection",
        {**DEPLOY_RULE, "verbs": ["delete"]},
        _req("DELETE", DEPLOYMENTS),
        False,
    ),
    ("deletecollection", {**DEPLOY_RULE, "verbs": ["deletecollection"]}, _req("DELETE", DEPLOYMENTS), True),
    ("other group", DEPLOY_RULE, _req("GET", "/apis/extensions/v1beta1/namespaces/default/deployments/x"), False),
    ("core group is the empty string", DEPLOY_RULE, _req("GET", "/api/v1/namespaces/default/pods/x"), False),
    (
        "core rule",
        {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]},
        _req("GET", "/api/v1/namespaces/default/services/x"),
        True,
    ),
    ("other resource", DEPLOY_RULE, _req("GET", "/apis/apps/v1/namespaces/default/statefulsets/x"), False),
    ("a subresource is not its resource", DEPLOY_RULE, _req("PUT", f"{DEPLOYMENTS}/x/status"), False),
    (
        "resource/subresource",
        {"apiGroups": ["apps"], "resources": ["deployments/status"], "verbs": ["update"]},
        _req("PUT", f"{DEPLOYMENTS}/x/status"),
        True,
    ),
    (
        "resource/subresource does not grant the resource",
        {"apiGroups": ["apps"], "resources": ["deployments/status"], "verbs": ["update"]},
        _req("PUT", f"{DEPLOYMENTS}/x"),
        False,
    ),
    (
        "*/subresource",
        {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["patch"]},
        _req("PATCH", f"{DEPLOYMENTS}/x/scale"),
        True,
    ),
    (
        "*/subresource is not another subresource",
        {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["patch"]},
        _req("PATCH", f"{DEPLOYMENTS}/x/status"),
        False,
    ),
    (
        "* resources include subresources",
        {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["update"]},
        _req("PUT", f"{DEPLOYMENTS}/x/status"),
        True,
    ),
    (
        "* groups",
        {"apiGroups": ["*"], "resources": ["deployments"], "verbs": ["get"]},
        _req("GET", f"{DEPLOYMENTS}/x"),
        True,
    ),
    ("* verbs", {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}, _req("POST", DEPLOYMENTS), True),
    ("resourceNames: get of that name", LEASE_BY_NAME, _req("GET", f"{LEASES}/replicator"), True),
    ("resourceNames: update of that name", LEASE_BY_NAME, _req("PUT", f"{LEASES}/replicator"), True),
    ("resourceNames: patch of that name", LEASE_BY_NAME, _req("PATCH", f"{LEASES}/replicator"), True),
    ("resourceNames: delete of that name", LEASE_BY_NAME, _req("DELETE", f"{LEASES}/replicator"), True),
    ("resourceNames: another name", LEASE_BY_NAME, _req("GET", f"{LEASES}/service-router"), False),
    ("resourceNames never allow create", LEASE_BY_NAME, _req("POST", LEASES), False),
    ("resourceNames never allow a plain list", LEASE_BY_NAME, _req("GET", LEASES), False),
    ("resourceNames never allow a plain watch", LEASE_BY_NAME, _req("GET", LEASES, {"watch": "1"}), False),
    ("resourceNames never allow deletecollection", LEASE_BY_NAME, _req("DELETE", LEASES), False),
    (
        "resourceNames allow a list selecting that name (metadata.name field selector)",
        LEASE_BY_NAME,
        _req("GET", LEASES, {"fieldSelector": "metadata.name=replicator"}),
        True,
    ),
    (
        "resourceNames allow a watch selecting that name",
        LEASE_BY_NAME,
        _req("GET", LEASES, {"watch": "true", "fieldSelector": "metadata.name==replicator"}),
        True,
    ),
    (
        "a field selector with more terms names nothing",
        LEASE_BY_NAME,
        _req("GET", LEASES, {"fieldSelector": "metadata.name=replicator,metadata.namespace=ns"}),
        False,
    ),
    (
        "a != selector names nothing",
        LEASE_BY_NAME,
        _req("GET", LEASES, {"fieldSelector": "metadata.name!=x"}),
        False,
    ),
    (
        "nonResourceURLs exact",
        {"nonResourceURLs": ["/version"], "verbs": ["get"]},
        _req("GET", "/version"),
        True,
    ),
    (
        "nonResourceURLs prefix*",
        {"nonResourceURLs": ["/apis/*"], "verbs": ["get"]},
        _req("GET", "/apis/apps/v1"),
        True,
    ),
    (
        "nonResourceURLs prefix* is not the prefix without its slash",
        {"nonResourceURLs": ["/apis/*"], "verbs": ["get"]},
        _req("GET", "/apis"),
        False,
    ),
    (
        "non-resource verbs are the lowercase HTTP method",
        {"nonResourceURLs": ["/version"], "verbs": ["get"]},
        _req("HEAD", "/version"),
        False,
    ),
    (
        "resource rules do not grant paths",
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        _req("GET", "/apis"),
        False,
    ),
    (
        "nonResourceURL rules do not grant resources",
        {"nonResourceURLs": ["*"], "verbs": ["*"]},
        _req("GET", f"{DEPLOYMENTS}/x"),
        False,
    ),
]


@pytest.mark.parametrize(("rule", "attrs", "allowed"), [c[1:] for c in RULE_CASES], ids=[c[0] for c in RULE_CASES])
def test_rule_allows(rule: dict[str, Any], attrs: Attributes, allowed: bool) -> None:
    assert rule_allows(rule, attrs) is allowed


SA = service_account_user("team", "bot")
ALICE = UserInfo("alice", ("devs", "system:authenticated"))

SUBJECT_CASES: list[tuple[str, dict[str, str], UserInfo, str, bool]] = [
    ("ServiceAccount", {"kind": "ServiceAccount", "name": "bot", "namespace": "team"}, SA, "", True),
    ("ServiceAccount of another namespace", {"kind": "ServiceAccount", "name": "bot", "namespace": "x"}, SA, "", False),
    ("ServiceAccount of another name", {"kind": "ServiceAccount", "name": "b", "namespace": "team"}, SA, "", False),
    ("ServiceAccount in the RoleBinding's namespace", {"kind": "ServiceAccount", "name": "bot"}, SA, "team", True),
    (
        "ServiceAccount without a namespace in a ClusterRoleBinding",
        {"kind": "ServiceAccount", "name": "bot"},
        SA,
        "",
        False,
    ),
    ("User", {"kind": "User", "name": "alice"}, ALICE, "", True),
    ("User is not a group", {"kind": "User", "name": "devs"}, ALICE, "", False),
    ("Group", {"kind": "Group", "name": "devs"}, ALICE, "", True),
    ("a ServiceAccount's groups", {"kind": "Group", "name": "system:serviceaccounts:team"}, SA, "", True),
    ("every ServiceAccount", {"kind": "Group", "name": "system:serviceaccounts"}, SA, "", True),
    ("authenticated users", {"kind": "Group", "name": "system:authenticated"}, SA, "", True),
    ("anonymous is not authenticated", {"kind": "Group", "name": "system:authenticated"}, ANONYMOUS_USER, "", False),
    ("a ServiceAccount by its user name", {"kind": "User", "name": "system:serviceaccount:team:bot"}, SA, "", True),
]


@pytest.mark.parametrize(
    ("subject", "user", "namespace", "applies"), [c[1:] for c in SUBJECT_CASES], ids=[c[0] for c in SUBJECT_CASES]
)
def test_subject_applies(subject: dict[str, str], user: UserInfo, namespace: str, applies: bool) -> None:
    assert subject_applies(subject, user, namespace) is applies


def _role(kind: str, name: str, rules: list[dict[str, Any]], namespace: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"kind": kind, "metadata": meta, "rules": rules}


def _binding(kind: str, name: str, ref_kind: str, ref: str, namespace: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref},
        "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "team"}],
    }


READ_DEPLOYMENTS = [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}]
READ_NAMESPACES = [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}]
POLICIES: dict[str, Policy] = {
    "ClusterRole via ClusterRoleBinding": Policy(
        cluster_roles=[_role("ClusterRole", "reader", READ_DEPLOYMENTS + READ_NAMESPACES)],
        cluster_role_bindings=[_binding("ClusterRoleBinding", "b", "ClusterRole", "reader")],
    ),
    "ClusterRole via RoleBinding": Policy(
        cluster_roles=[_role("ClusterRole", "reader", READ_DEPLOYMENTS + READ_NAMESPACES)],
        role_bindings=[_binding("RoleBinding", "b", "ClusterRole", "reader", "apps-ns")],
    ),
    "Role via RoleBinding": Policy(
        roles=[_role("Role", "reader", READ_DEPLOYMENTS + READ_NAMESPACES, "apps-ns")],
        role_bindings=[_binding("RoleBinding", "b", "Role", "reader", "apps-ns")],
    ),
    "Role of another namespace": Policy(
        roles=[_role("Role", "reader", READ_DEPLOYMENTS, "other")],
        role_bindings=[_binding("RoleBinding", "b", "Role", "reader", "apps-ns")],
    ),
    "missing ClusterRole": Policy(cluster_role_bindings=[_binding("ClusterRoleBinding", "b", "ClusterRole", "gone")]),
}
IN_NS = _req("GET", "/apis/apps/v1/namespaces/apps-ns/deployments/web")
ELSEWHERE = _req("GET", "/apis/apps/v1/namespaces/other/deployments/web")
ALL_NS = _req("GET", "/apis/apps/v1/deployments")
THE_NS = _req("GET", "/api/v1/namespaces/apps-ns")

DECISIONS: list[tuple[str, Attributes, bool]] = [
    ("ClusterRole via ClusterRoleBinding", IN_NS, True),
    ("ClusterRole via ClusterRoleBinding", ELSEWHERE, True),
    ("ClusterRole via ClusterRoleBinding", ALL_NS, True),
    ("ClusterRole via RoleBinding", IN_NS, True),
    ("ClusterRole via RoleBinding", ELSEWHERE, False),
    ("ClusterRole via RoleBinding", ALL_NS, False),  # a list across namespaces is cluster scope
    ("ClusterRole via RoleBinding", THE_NS, True),  # a namespace's own object is "in" it, as real
    ("Role via RoleBinding", IN_NS, True),
    ("Role via RoleBinding", ELSEWHERE, False),
    ("Role via RoleBinding", ALL_NS, False),
    ("Role of another namespace", IN_NS, False),
    ("missing ClusterRole", IN_NS, False),
]


@pytest.mark.parametrize(("policy", "attrs", "allowed"), DECISIONS, ids=[f"{p}-{a.path}" for p, a, _ in DECISIONS])
def test_decide(policy: str, attrs: Attributes, allowed: bool) -> None:
    assert decide(SA, attrs, POLICIES[policy])[0] is allowed
    assert decide(ALICE, attrs, POLICIES[policy])[0] is False  # the bindings name the ServiceAccount only


def test_system_masters_is_always_allowed() -> None:
    assert decide(ADMIN_USER, IN_NS, Policy()) == (True, "")


def test_a_missing_role_is_the_reason() -> None:
    policy = Policy(
        cluster_role_bindings=[_binding("ClusterRoleBinding", "a", "ClusterRole", "gone")],
        role_bindings=[_binding("RoleBinding", "b", "Role", "absent", "apps-ns")],
    )
    allowed, reason = decide(SA, IN_NS, policy)
    assert not allowed
    assert reason == (
        'RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, '
        'role.rbac.authorization.k8s.io "absent" not found]'
    )


FORBIDDEN_MESSAGES: list[tuple[Attributes, str]] = [
    (
        _req("PUT", f"{DEPLOYMENTS}/x"),
        'deployments.apps "x" is forbidden: User "system:serviceaccount:team:bot" cannot update resource '
        '"deployments" in API group "apps" in the namespace "default"',
    ),
    (
        _req("POST", DEPLOYMENTS),
        'deployments.apps is forbidden: User "system:serviceaccount:team:bot" cannot create resource '
        '"deployments" in API group "apps" in the namespace "default"',
    ),
    (
        _req("PUT", f"{DEPLOYMENTS}/x/status"),
        'deployments.apps "x" is forbidden: User "system:serviceaccount:team:bot" cannot update resource '
        '"deployments/status" in API group "apps" in the namespace "default"',
    ),
    (
        _req("GET", "/api/v1/nodes"),
        'nodes is forbidden: User "system:serviceaccount:team:bot" cannot list resource "nodes" in API group "" '
        "at the cluster scope",
    ),
    (_req("GET", "/apis"), 'forbidden: User "system:serviceaccount:team:bot" cannot get path "/apis"'),
]


@pytest.mark.parametrize(("attrs", "message"), FORBIDDEN_MESSAGES, ids=[m[:40] for _, m in FORBIDDEN_MESSAGES])
def test_forbidden_message_is_kube_apiservers(attrs: Attributes, message: str) -> None:
    error = forbidden(SA, attrs)
    assert (error.code, error.reason, error.message) == (403, "Forbidden", message)
    if attrs.is_resource:
        assert error.details == {"group": attrs.group, "kind": attrs.resource, **({"name": "x"} if attrs.name else {})}
