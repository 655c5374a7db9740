"""PATCH: merge patch, JSON patch and strategic merge patch with the real merge keys; 415 for CRs."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from emulators.kube_api import KubeApiServer
from emulators.kube_api.builtin_schema import kind_schema
from emulators.kube_api.patch import json_patch, merge_patch, strategic_merge
from emulators.kube_api.testing import deployment, service, virtual_service

DEPLOYMENT_SCHEMA = kind_schema("Deployment", "apps/v1")


def send_patch(server: KubeApiServer, path: str, body: Any, content_type: str) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        server.url + path, data=json.dumps(body).encode(), method="PATCH", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def create(server: KubeApiServer, group: str, version: str, plural: str, body: dict[str, Any]) -> None:
    rt = server.registry.lookup(group, version, plural)
    assert rt is not None
    server.api.create(rt, "default", body, {})


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": 1, "b": {"c": 2}}, {"b": {"c": None, "d": 3}}, {"a": 1, "b": {"d": 3}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
        ({"a": 1}, {"a": None}, {}),
    ],
    ids=["nested-null-deletes", "lists-replace", "top-level-delete"],
)
def test_merge_patch_rfc7386(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([{"op": "add", "path": "/b", "value": 2}], {"a": [1, 2], "b": 2}),
        ([{"op": "add", "path": "/a/-", "value": 3}], {"a": [1, 2, 3]}),
        ([{"op": "remove", "path": "/a/0"}], {"a": [2]}),
        ([{"op": "replace", "path": "/a/1", "value": 9}], {"a": [1, 9]}),
        ([{"op": "move", "from": "/a", "path": "/z"}], {"z": [1, 2]}),
        ([{"op": "copy", "from": "/a/0", "path": "/c"}], {"a": [1, 2], "c": 1}),
        ([{"op": "test", "path": "/a/0", "value": 1}], {"a": [1, 2]}),
    ],
    ids=["add", "append", "remove", "replace", "move", "copy", "test"],
)
def test_json_patch_rfc6902(ops: list[dict[str, Any]], expected: Any) -> None:
    assert json_patch({"a": [1, 2]}, ops) == expected


def test_failed_json_patch_test_op_is_invalid(server: KubeApiServer) -> None:
    create(server, "", "v1", "configmaps", {"metadata": {"name": "c"}, "data": {"k": "v"}})
    code, body = send_patch(
        server,
        "/api/v1/namespaces/default/configmaps/c",
        [{"op": "test", "path": "/data/k", "value": "other"}],
        "application/json-patch+json",
    )
    assert code == 422 and body["kind"] == "Status"


def containers(*names_images: tuple[str, str]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [{"name": n, "image": i} for n, i in names_images]}}}}


def test_strategic_merge_merges_containers_by_name() -> None:
    merged = strategic_merge(
        containers(("app", "a:1"), ("side", "s:1")), containers(("side", "s:2")), DEPLOYMENT_SCHEMA
    )
    assert merged["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "image": "a:1"},
        {"name": "side", "image": "s:2"},
    ]


def test_strategic_merge_delete_directive_removes_one_element() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}}
    merged = strategic_merge(containers(("app", "a:1"), ("side", "s:1")), patch, DEPLOYMENT_SCHEMA)
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["app"]


def test_strategic_merge_replace_directive_replaces_the_list() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "new", "image": "n"}, {"$patch": "replace"}]}}}}
    merged = strategic_merge(containers(("app", "a:1")), patch, DEPLOYMENT_SCHEMA)
    assert merged["spec"]["template"]["spec"]["containers"] == [{"name": "new", "image": "n"}]


def test_strategic_merge_env_and_ports_by_their_keys() -> None:
    original = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 80}],
                            "volumeMounts": [{"mountPath": "/x", "name": "v"}],
                        }
                    ]
                }
            }
        }
    }
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "env": [{"name": "B", "value": "3"}],
                            "ports": [{"containerPort": 81}],
                            "volumeMounts": [{"mountPath": "/y", "name": "w"}],
                        }
                    ]
                }
            }
        }
    }
    merged = strategic_merge(original, patch, DEPLOYMENT_SCHEMA)
    c = merged["spec"]["template"]["spec"]["containers"][0]
    assert c["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert [p["containerPort"] for p in c["ports"]] == [80, 81]
    assert [m["mountPath"] for m in c["volumeMounts"]] == ["/x", "/y"]


def test_strategic_merge_replaces_atomic_lists() -> None:
    original = {"spec": {"template": {"spec": {"containers": [{"name": "app", "args": ["a", "b"]}]}}}}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "args": ["c"]}]}}}}
    merged = strategic_merge(original, patch, DEPLOYMENT_SCHEMA)
    assert merged["spec"]["template"]["spec"]["containers"][0]["args"] == ["c"]


def test_strategic_merge_unions_finalizers_and_merges_conditions_by_type() -> None:
    original = {"metadata": {"finalizers": ["a"]}, "status": {"conditions": [{"type": "Available", "status": "False"}]}}
    patch = {"metadata": {"finalizers": ["b"]}, "status": {"conditions": [{"type": "Available", "status": "True"}]}}
    merged = strategic_merge(original, patch, DEPLOYMENT_SCHEMA)
    assert merged["metadata"]["finalizers"] == ["a", "b"]
    assert merged["status"]["conditions"] == [{"type": "Available", "status": "True"}]


def test_strategic_patch_over_http_on_a_deployment(server: KubeApiServer) -> None:
    body = deployment()
    body["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "s:1"})
    create(server, "apps", "v1", "deployments", body)
    code, result = send_patch(
        server,
        "/apis/apps/v1/namespaces/default/deployments/web",
        containers(("side", "s:2")),
        "application/strategic-merge-patch+json",
    )
    assert code == 200
    images = [c["image"] for c in result["spec"]["template"]["spec"]["containers"]]
    assert images == ["nginx:1.27", "s:2"]


def test_merge_patch_over_http_replaces_lists(server: KubeApiServer) -> None:
    body = deployment()
    body["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "s:1"})
    create(server, "apps", "v1", "deployments", body)
    code, result = send_patch(
        server,
        "/apis/apps/v1/namespaces/default/deployments/web",
        containers(("side", "s:2")),
        "application/merge-patch+json",
    )
    assert code == 200
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == ["side"]


def test_strategic_patch_on_custom_resource_is_415(with_vs_crd: KubeApiServer) -> None:
    create(with_vs_crd, "networking.istio.io", "v1", "virtualservices", virtual_service())
    code, body = send_patch(
        with_vs_crd,
        "/apis/networking.istio.io/v1/namespaces/default/virtualservices/web",
        {"spec": {"gateways": ["mesh"]}},
        "application/strategic-merge-patch+json",
    )
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")


@pytest.mark.parametrize("content_type", ["application/merge-patch+json", "application/json-patch+json"])
def test_merge_and_json_patch_work_on_custom_resources(with_vs_crd: KubeApiServer, content_type: str) -> None:
    create(with_vs_crd, "networking.istio.io", "v1", "virtualservices", virtual_service())
    patch: Any = {"spec": {"gateways": ["mesh"]}}
    if content_type == "application/json-patch+json":
        patch = [{"op": "add", "path": "/spec/gateways", "value": ["mesh"]}]
    code, body = send_patch(
        with_vs_crd, "/apis/networking.istio.io/v1/namespaces/default/virtualservices/web", patch, content_type
    )
    assert code == 200 and body["spec"]["gateways"] == ["mesh"]
    assert body["metadata"]["generation"] == 2


def test_patch_of_missing_object_is_404(server: KubeApiServer) -> None:
    code, body = send_patch(
        server, "/api/v1/namespaces/default/services/missing", {"metadata": {}}, "application/merge-patch+json"
    )
    assert (code, body["reason"]) == (404, "NotFound")


def test_patch_validates_the_result(server: KubeApiServer) -> None:
    create(server, "", "v1", "services", service())
    code, body = send_patch(
        server, "/api/v1/namespaces/default/services/web", {"spec": {"ports": None}}, "application/merge-patch+json"
    )
    assert (code, body["reason"]) == (422, "Invalid")


def test_status_patch_leaves_spec_alone(server: KubeApiServer) -> None:
    create(server, "apps", "v1", "deployments", deployment())
    code, body = send_patch(
        server,
        "/apis/apps/v1/namespaces/default/deployments/web/status",
        {"spec": {"replicas": 9}, "status": {"replicas": 3}},
        "application/merge-patch+json",
    )
    assert code == 200
    assert body["spec"]["replicas"] == 1 and body["status"]["replicas"] == 3
