"""RBAC over HTTP, through the real ``kubernetes`` client: tokens, 401, 403, grants that take effect.

The server runs with ``authorization="rbac"``; the admin kubeconfig (``system:masters``) sets up
ServiceAccounts, roles and bindings, and each test then acts with a ServiceAccount's token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from emulators.kube_api import KubeApiServer
from emulators.kube_api.testing import deployment

RBAC = "rbac.authorization.k8s.io"
SA_USER = "system:serviceaccount:team:bot"


@pytest.fixture
def server() -> Iterator[KubeApiServer]:
    with KubeApiServer(deployment_delay_seconds=0.01, authorization="rbac") as srv:
        yield srv
    assert srv.internal_errors == [], "\n".join(srv.internal_errors)


def _client(server: KubeApiServer, path: Path, token: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(server.write_kubeconfig(path, token=token)))


@pytest.fixture
def admin(server: KubeApiServer, tmp_path: Path) -> Iterator[client.ApiClient]:
    api = _client(server, tmp_path / "admin", "admin-token")  # write_kubeconfig's default token
    core = client.CoreV1Api(api)
    for ns in ("team", "apps-ns"):
        core.create_namespace({"metadata": {"name": ns}})
    core.create_namespaced_service_account("team", {"metadata": {"name": "bot"}})
    yield api
    api.close()


@pytest.fixture
def bot(server: KubeApiServer, admin: client.ApiClient, tmp_path: Path) -> Iterator[client.ApiClient]:
    assert server.add_service_account_token("bot-token", "team", "bot") == SA_USER
    api = _client(server, tmp_path / "bot", "bot-token")
    yield api
    api.close()


def _grant(admin: client.ApiClient, rules: list[dict[str, Any]], namespace: str | None = "apps-ns") -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    subjects = [{"kind": "ServiceAccount", "name": "bot", "namespace": "team"}]
    if namespace is None:
        rbac.create_cluster_role({"metadata": {"name": "bot"}, "rules": rules})
        rbac.create_cluster_role_binding(
            {"metadata": {"name": "bot"}, "roleRef": _ref("ClusterRole", "bot"), "subjects": subjects}
        )
    else:
        rbac.create_namespaced_role(namespace, {"metadata": {"name": "bot"}, "rules": rules})
        rbac.create_namespaced_role_binding(
            namespace, {"metadata": {"name": "bot"}, "roleRef": _ref("Role", "bot"), "subjects": subjects}
        )


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": kind, "name": name}


def _denied(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 403, caught.value.body
    body: dict[str, Any] = json.loads(caught.value.body)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Forbidden", 403)
    return body


def test_a_role_grants_what_it_lists_in_its_namespace_and_nothing_else(
    server: KubeApiServer, admin: client.ApiClient, bot: client.ApiClient
) -> None:
    client.AppsV1Api(admin).create_namespaced_deployment("apps-ns", deployment("web"))
    _grant(admin, [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]}])
    apps = client.AppsV1Api(bot)
    assert apps.read_namespaced_deployment("web", "apps-ns").metadata.name == "web"
    assert [d.metadata.name for d in apps.list_namespaced_deployment("apps-ns").items] == ["web"]

    body = _denied(apps.replace_namespaced_deployment, "web", "apps-ns", deployment("web"))
    assert body["message"] == (
        f'deployments.apps "web" is forbidden: User "{SA_USER}" cannot update resource "deployments" '
        'in API group "apps" in the namespace "apps-ns"'
    )
    assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    body = _denied(apps.create_namespaced_deployment, "apps-ns", deployment("other"))
    assert body["message"].startswith(
        'deployments.apps is forbidden: User "system:serviceaccount:team:bot" cannot create'
    )
    _denied(apps.patch_namespaced_deployment, "web", "apps-ns", {"spec": {"replicas": 2}})
    _denied(apps.delete_namespaced_deployment, "web", "apps-ns")
    _denied(apps.delete_collection_namespaced_deployment, "apps-ns")
    _denied(apps.read_namespaced_deployment, "web", "default")  # another namespace
    body = _denied(apps.list_deployment_for_all_namespaces)
    assert body["message"].endswith('in API group "apps" at the cluster scope')
    _denied(client.CoreV1Api(bot).list_namespaced_service, "apps-ns")

    # Denied requests changed nothing, and the log knows who asked.
    assert client.AppsV1Api(admin).read_namespaced_deployment("web", "apps-ns").spec.replicas == 1
    mine = [r for r in server.request_log if r.user == SA_USER]
    assert {(r.verb, r.status) for r in mine} >= {("get", 200), ("list", 200), ("update", 403), ("create", 403)}
    assert all(r.user == "system:admin" for r in server.request_log if r not in mine)


def test_a_cluster_role_binding_grants_everywhere_a_role_binding_only_in_its_namespace(
    admin: client.ApiClient, bot: client.ApiClient
) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_cluster_role(
        {
            "metadata": {"name": "svc-reader"},
            "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}],
        }
    )
    subjects = [{"kind": "ServiceAccount", "name": "bot", "namespace": "team"}]
    rbac.create_namespaced_role_binding(
        "apps-ns", {"metadata": {"name": "b"}, "roleRef": _ref("ClusterRole", "svc-reader"), "subjects": subjects}
    )
    core = client.CoreV1Api(bot)
    core.list_namespaced_service("apps-ns")
    _denied(core.list_namespaced_service, "default")
    _denied(core.list_service_for_all_namespaces)

    rbac.create_cluster_role_binding(
        {"metadata": {"name": "b"}, "roleRef": _ref("ClusterRole", "svc-reader"), "subjects": subjects}
    )
    core.list_namespaced_service("default")
    core.list_service_for_all_namespaces()

    rbac.delete_cluster_role_binding("b")  # revoking takes effect at once
    _denied(core.list_namespaced_service, "default")


def test_resource_names_allow_named_requests_only(admin: client.ApiClient, bot: client.ApiClient) -> None:
    lease = {"metadata": {"name": "mine"}, "spec": {"holderIdentity": "a"}}
    coordination = client.CoordinationV1Api(admin)
    coordination.create_namespaced_lease("apps-ns", lease)
    coordination.create_namespaced_lease("apps-ns", {"metadata": {"name": "theirs"}, "spec": {}})
    _grant(
        admin,
        [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": ["mine"],
                "verbs": ["get", "list", "update", "create"],
            },
        ],
    )
    leases = client.CoordinationV1Api(bot)
    current = leases.read_namespaced_lease("mine", "apps-ns")
    current.spec.holder_identity = "b"
    leases.replace_namespaced_lease("mine", "apps-ns", current)
    _denied(leases.read_namespaced_lease, "theirs", "apps-ns")
    _denied(leases.list_namespaced_lease, "apps-ns")  # a plain list names nothing
    listed = leases.list_namespaced_lease("apps-ns", field_selector="metadata.name=mine")
    assert [item.metadata.name for item in listed.items] == ["mine"]
    leases.create_namespaced_lease("apps-ns", {"metadata": {"name": "new"}, "spec": {}})  # the unnamed rule


def test_subresources_are_granted_separately(admin: client.ApiClient, bot: client.ApiClient) -> None:
    client.AppsV1Api(admin).create_namespaced_deployment("apps-ns", deployment("web"))
    _grant(admin, [{"apiGroups": ["apps"], "resources": ["deployments/status", "deployments/scale"], "verbs": ["*"]}])
    apps = client.AppsV1Api(bot)
    apps.patch_namespaced_deployment_status("web", "apps-ns", {"status": {"observedGeneration": 1}})
    apps.patch_namespaced_deployment_scale("web", "apps-ns", {"spec": {"replicas": 3}})
    body = _denied(apps.patch_namespaced_deployment, "web", "apps-ns", {"spec": {"replicas": 2}})
    assert 'cannot patch resource "deployments" in API group "apps"' in body["message"]
    _denied(apps.read_namespaced_deployment, "web", "apps-ns")


def test_watch_is_its_own_verb(admin: client.ApiClient, bot: client.ApiClient) -> None:
    _grant(admin, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}])
    core = client.CoreV1Api(bot)
    core.list_namespaced_config_map("apps-ns")
    with pytest.raises(ApiException) as caught:
        for _ in watch.Watch().stream(core.list_namespaced_config_map, "apps-ns", timeout_seconds=1):
            pass
    assert caught.value.status == 403
    assert 'cannot watch resource "configmaps"' in json.loads(caught.value.body)["message"]


def test_users_and_groups_are_subjects_too(server: KubeApiServer, admin: client.ApiClient, tmp_path: Path) -> None:
    server.add_user_token("alice-token", "alice", ["devs"])
    server.add_user_token("bob-token", "bob")
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_cluster_role(
        {"metadata": {"name": "ns-reader"}, "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["*"]}]}
    )
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": "devs"},
            "roleRef": _ref("ClusterRole", "ns-reader"),
            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "devs"}],
        }
    )
    alice = _client(server, tmp_path / "alice", "alice-token")
    bob = _client(server, tmp_path / "bob", "bob-token")
    try:
        client.CoreV1Api(alice).list_namespace()
        body = _denied(client.CoreV1Api(bob).list_namespace)
        assert body["message"] == (
            'namespaces is forbidden: User "bob" cannot list resource "namespaces" in API group "" at the cluster scope'
        )
        rbac.patch_cluster_role_binding("devs", {"subjects": [{"apiGroup": RBAC, "kind": "User", "name": "bob"}]})
        client.CoreV1Api(bob).list_namespace()
        _denied(client.CoreV1Api(alice).list_namespace)
    finally:
        alice.close()
        bob.close()


def test_discovery_is_open_to_authenticated_users_and_version_to_everyone(
    server: KubeApiServer, bot: client.ApiClient
) -> None:
    assert "apps" in [g.name for g in client.ApisApi(bot).get_api_versions().groups]
    assert client.CoreApi(bot).get_api_versions().versions == ["v1"]
    assert any(r.name == "deployments" for r in client.AppsV1Api(bot).get_api_resources().resources)
    assert client.VersionApi(bot).get_code().major

    assert requests.get(f"{server.url}/version", timeout=5).status_code == 200
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
    anonymous = requests.get(f"{server.url}/apis", timeout=5)
    assert anonymous.status_code == 403
    assert anonymous.json()["message"] == 'forbidden: User "system:anonymous" cannot get path "/apis"'
    listing = requests.get(f"{server.url}/api/v1/namespaces/default/pods", timeout=5)
    assert listing.status_code == 403
    assert server.request_log[-1].user == "system:anonymous"


def test_unknown_tokens_and_tokens_of_deleted_service_accounts_are_401(
    server: KubeApiServer, admin: client.ApiClient, bot: client.ApiClient, tmp_path: Path
) -> None:
    stranger = _client(server, tmp_path / "stranger", "nobody-knows-me")
    try:
        with pytest.raises(ApiException) as caught:
            client.CoreV1Api(stranger).list_namespaced_pod("default")
        assert caught.value.status == 401
        assert json.loads(caught.value.body) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }
    finally:
        stranger.close()
    client.ApisApi(bot).get_api_versions()
    client.CoreV1Api(admin).delete_namespaced_service_account("bot", "team")
    with pytest.raises(ApiException) as caught:
        client.ApisApi(bot).get_api_versions()
    assert caught.value.status == 401


def test_the_admin_may_do_anything_even_without_bindings(server: KubeApiServer, admin: client.ApiClient) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    names = {b.metadata.name for b in rbac.list_cluster_role_binding().items}
    assert {"cluster-admin", "system:discovery", "system:public-info-viewer"} <= names
    for name in names:
        rbac.delete_cluster_role_binding(name)
    client.CoreV1Api(admin).list_namespace()
    client.ApisApi(admin).get_api_versions()


def test_allow_all_is_the_default_and_unchanged(tmp_path: Path) -> None:
    with KubeApiServer() as srv:
        api = _client(srv, tmp_path / "kc", "any-token")
        try:
            client.CoreV1Api(api).list_namespaced_pod("default")
        finally:
            api.close()
        assert srv.objects("clusterroles") == []  # no bootstrap policy either
        assert srv.request_log[-1].user == "any-token"
    with pytest.raises(ValueError, match="authorization"):
        KubeApiServer(authorization="abac")
