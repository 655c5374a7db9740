"""Discovery: the documents kubectl and the dynamic client use to find every resource."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from emulators.kube_api import KubeApiServer


def get_json(server: KubeApiServer, path: str, accept: str = "application/json") -> tuple[int, Any]:
    req = urllib.request.Request(server.url + path, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_version_reports_a_kubernetes_version(server: KubeApiServer) -> None:
    status, body = get_json(server, "/version")
    assert status == 200
    assert body["major"] == "1" and body["gitVersion"].startswith("v1.")


def test_core_group_lists_v1(server: KubeApiServer) -> None:
    status, body = get_json(server, "/api")
    assert (status, body["kind"], body["versions"]) == (200, "APIVersions", ["v1"])


@pytest.mark.parametrize(
    ("path", "name", "kind", "namespaced", "short"),
    [
        ("/api/v1", "namespaces", "Namespace", False, ["ns"]),
        ("/api/v1", "services", "Service", True, ["svc"]),
        ("/api/v1", "events", "Event", True, ["ev"]),
        ("/api/v1", "configmaps", "ConfigMap", True, ["cm"]),
        ("/api/v1", "secrets", "Secret", True, None),
        ("/api/v1", "serviceaccounts", "ServiceAccount", True, ["sa"]),
        ("/apis/apps/v1", "deployments", "Deployment", True, ["deploy"]),
        ("/apis/coordination.k8s.io/v1", "leases", "Lease", True, None),
        ("/api/v1", "pods", "Pod", True, ["po"]),
        ("/apis/policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"]),
        ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False, None),
        ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", True, None),
        (
            "/apis/apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            ["crd", "crds"],
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and not v.startswith("/") else None,
)
def test_resource_lists_describe_builtin_kinds(
    server: KubeApiServer, path: str, name: str, kind: str, namespaced: bool, short: list[str] | None
) -> None:
    status, body = get_json(server, path)
    assert status == 200 and body["kind"] == "APIResourceList"
    entry = next(r for r in body["resources"] if r["name"] == name)
    assert entry["kind"] == kind
    assert entry["namespaced"] is namespaced
    assert entry.get("shortNames") == short
    assert {"get", "list", "watch", "create", "update", "patch", "delete"} <= set(entry["verbs"])


def test_status_subresource_is_listed_for_deployments(server: KubeApiServer) -> None:
    _, body = get_json(server, "/apis/apps/v1")
    names = {r["name"]: r for r in body["resources"]}
    assert names["deployments/status"]["verbs"] == ["get", "patch", "update"]


def test_group_list_names_every_builtin_group(server: KubeApiServer) -> None:
    _, body = get_json(server, "/apis")
    groups = {g["name"]: g for g in body["groups"]}
    assert {"apps", "coordination.k8s.io", "apiextensions.k8s.io"} <= set(groups)
    assert groups["apps"]["preferredVersion"]["groupVersion"] == "apps/v1"
    status, group = get_json(server, "/apis/apps")
    assert status == 200 and group["kind"] == "APIGroup" and group["name"] == "apps"


def test_aggregated_discovery_request_gets_legacy_json(server: KubeApiServer) -> None:
    accept = (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
    )
    status, body = get_json(server, "/apis", accept=accept)
    assert status == 200 and body["kind"] == "APIGroupList"


def test_unknown_group_version_is_404_status(server: KubeApiServer) -> None:
    status, body = get_json(server, "/apis/nope.example.com/v1")
    assert status == 404
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "NotFound", 404)


def test_openapi_v2_is_absent_and_v3_declares_field_validation(server: KubeApiServer) -> None:
    assert get_json(server, "/openapi/v2")[0] == 404
    status, root = get_json(server, "/openapi/v3")
    assert status == 200
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    _, doc = get_json(server, url)
    patch_ops = [p["patch"] for p in doc["paths"].values()]
    deployment_op = next(op for op in patch_ops if op["x-kubernetes-group-version-kind"]["kind"] == "Deployment")
    assert any(p["name"] == "fieldValidation" for p in deployment_op["parameters"])


def test_crd_registers_every_served_version(with_vs_crd: KubeApiServer) -> None:
    _, group = get_json(with_vs_crd, "/apis/networking.istio.io")
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1", "v1alpha3"]
    assert group["preferredVersion"]["version"] == "v1"
    for version in ("v1", "v1beta1", "v1alpha3"):
        status, body = get_json(with_vs_crd, f"/apis/networking.istio.io/{version}")
        entry = next(r for r in body["resources"] if r["name"] == "virtualservices")
        assert status == 200
        assert (entry["kind"], entry["namespaced"], entry["shortNames"]) == ("VirtualService", True, ["vs"])


def test_deleting_the_crd_unregisters_its_kind(with_vs_crd: KubeApiServer) -> None:
    status, _ = get_json(with_vs_crd, "/apis/networking.istio.io/v1")
    assert status == 200
    rt = with_vs_crd.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert rt is not None
    with_vs_crd.api.delete(rt, "", "virtualservices.networking.istio.io", {})
    assert get_json(with_vs_crd, "/apis/networking.istio.io/v1")[0] == 404
    _, groups = get_json(with_vs_crd, "/apis")
    assert "networking.istio.io" not in {g["name"] for g in groups["groups"]}
