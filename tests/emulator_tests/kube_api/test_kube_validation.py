"""Validation answered like kube-apiserver: 422 Invalid with causes, 400 for undecodable bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from emulators.kube_api import ApiError, KubeApiServer
from emulators.kube_api.testing import deployment, service


def create(
    server: KubeApiServer,
    plural: str,
    body: dict[str, Any],
    namespace: str = "default",
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    rt = next(t for t in server.registry.all() if t.plural == plural)
    return server.api.create(rt, namespace if rt.namespaced else "", body, query or {})[0]


def status(err: ApiException) -> dict[str, Any]:
    return json.loads(err.body)


def causes(err: ApiException) -> set[tuple[str, str]]:
    return {(c["reason"], c["field"]) for c in status(err)["details"]["causes"]}


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("web", True),
        ("web.v2", True),
        ("Web", False),
        ("-web", False),
        ("web_1", False),
        ("a" * 253, True),
        ("a" * 254, False),
    ],
)
def test_deployment_names_are_dns1123_subdomains(apps: client.AppsV1Api, name: str, ok: bool) -> None:
    body = deployment()
    body["metadata"]["name"] = name
    if ok:
        assert apps.create_namespaced_deployment("default", body).metadata.name == name
        return
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment("default", body)
    assert err.value.status == 422
    assert status(err.value)["reason"] == "Invalid"
    assert causes(err.value) == {("FieldValueInvalid", "metadata.name")}
    assert status(err.value)["details"]["kind"] == "Deployment"


@pytest.mark.parametrize(
    ("name", "ok"),
    [("web", True), ("web-1", True), ("1web", False), ("web.v2", False), ("a" * 63, True), ("a" * 64, False)],
)
def test_service_names_are_dns1035_labels(core: client.CoreV1Api, name: str, ok: bool) -> None:
    body = service()
    body["metadata"]["name"] = name
    if ok:
        assert core.create_namespaced_service("default", body).metadata.name == name
        return
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service("default", body)
    assert err.value.status == 422 and causes(err.value) == {("FieldValueInvalid", "metadata.name")}


def test_namespace_names_are_dns1123_labels(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespace({"metadata": {"name": "team.a"}})
    assert err.value.status == 422


def test_invalid_message_names_kind_object_and_field(apps: client.AppsV1Api) -> None:
    body = deployment()
    body["metadata"]["name"] = "Bad"
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment("default", body)
    assert status(err.value)["message"].startswith(
        'Deployment.apps "Bad" is invalid: metadata.name: Invalid value: "Bad": a lowercase RFC 1123 subdomain'
    )


def test_deployment_requires_selector_and_containers(server: KubeApiServer) -> None:
    body = {"metadata": {"name": "web"}, "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {}}}}
    with pytest.raises(ApiError) as err:
        create(server, "deployments", body)
    fields = {c["field"] for c in err.value.details["causes"]}
    assert {"spec.selector", "spec.template.spec.containers"} <= fields


def test_container_needs_name_and_image(server: KubeApiServer) -> None:
    body = deployment()  # the typed client refuses to send this, so go through the REST layer
    body["spec"]["template"]["spec"]["containers"] = [{"image": ""}]
    with pytest.raises(ApiError) as err:
        create(server, "deployments", body)
    assert err.value.code == 422
    assert {c["field"] for c in err.value.details["causes"]} >= {
        "spec.template.spec.containers[0].name",
        "spec.template.spec.containers[0].image",
    }


def test_selector_must_match_template_labels(apps: client.AppsV1Api) -> None:
    body = deployment()
    body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment("default", body)
    assert causes(err.value) == {("FieldValueInvalid", "spec.template.metadata.labels")}
    assert "`selector` does not match template `labels`" in status(err.value)["message"]


def test_deployment_selector_is_immutable(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    changed = deployment(labels={"app": "web", "v": "2"})
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_deployment("web", "default", changed)
    assert ("FieldValueInvalid", "spec.selector") in causes(err.value)
    assert "field is immutable" in status(err.value)["message"]


def test_service_needs_ports(core: client.CoreV1Api) -> None:
    body = service()
    del body["spec"]["ports"]
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service("default", body)
    assert causes(err.value) == {("FieldValueRequired", "spec.ports")}


def test_service_ports_need_names_when_several(core: client.CoreV1Api) -> None:
    body = service()
    body["spec"]["ports"] = [{"port": 80}, {"port": 81}]
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service("default", body)
    assert ("FieldValueRequired", "spec.ports[0].name") in causes(err.value)


def test_service_cluster_ip_is_immutable(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_service("default", service())
    body = service()
    body["spec"]["clusterIP"] = "10.96.200.200"
    body["metadata"]["resourceVersion"] = created.metadata.resource_version
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_service("web", "default", body)
    assert err.value.status == 422 and "may not change once set" in status(err.value)["message"]


def test_unknown_field_in_builtin_is_strict_decoding_error(server: KubeApiServer) -> None:
    body = deployment()
    body["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    with pytest.raises(ApiError) as err:
        create(server, "deployments", body, query={"fieldValidation": "Strict"})
    assert err.value.code == 400
    assert 'strict decoding error: unknown field "spec.template.spec.containers[0].imagee"' in str(err.value)


def test_field_validation_warn_prunes_and_warns(server: KubeApiServer, kubeconfig: Any) -> None:
    import urllib.request

    body = service()
    body["spec"]["bogus"] = True
    req = urllib.request.Request(
        server.url + "/api/v1/namespaces/default/services?fieldValidation=Warn",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 201
        assert 'unknown field \\"spec.bogus\\"' in resp.headers["Warning"]
    assert "bogus" not in server.objects("services")[0]["spec"]


def test_field_validation_ignore_prunes_silently(server: KubeApiServer) -> None:
    body = service()
    body["spec"]["bogus"] = True
    create(server, "services", body, query={"fieldValidation": "Ignore"})
    assert "bogus" not in server.objects("services")[0]["spec"]


def test_wrong_type_in_builtin_is_bad_request(server: KubeApiServer) -> None:
    body = deployment()
    body["spec"]["replicas"] = "three"
    with pytest.raises(ApiError) as err:
        create(server, "deployments", body)
    assert err.value.code == 400
    assert "cannot be handled as a Deployment" in str(err.value)


def test_label_values_are_validated(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", {"metadata": {"name": "c", "labels": {"a": "not ok"}}})
    assert causes(err.value) == {("FieldValueInvalid", "metadata.labels")}


def test_service_defaults_like_the_real_server(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_service("default", service(port=8080))
    spec = created.spec
    assert spec.type == "ClusterIP" and spec.session_affinity == "None"
    assert spec.ports[0].protocol == "TCP" and spec.ports[0].target_port == 8080
    assert spec.cluster_ips == [spec.cluster_ip]


def test_cluster_ips_are_unique_in_the_service_cidr_and_kept_on_update(core: client.CoreV1Api) -> None:
    import ipaddress

    ips = [core.create_namespaced_service("default", service(f"s{i}")).spec.cluster_ip for i in range(5)]
    assert len(set(ips)) == 5
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.96.0.0/12") for ip in ips)
    replaced = core.replace_namespaced_service("s0", "default", service("s0", selector={"app": "new"}))
    assert replaced.spec.cluster_ip == ips[0]


def test_headless_service_keeps_none(core: client.CoreV1Api) -> None:
    body = service()
    body["spec"]["clusterIP"] = "None"
    assert core.create_namespaced_service("default", body).spec.cluster_ip == "None"


def test_deployment_defaults_like_the_real_server(apps: client.AppsV1Api) -> None:
    spec = apps.create_namespaced_deployment("default", deployment()).spec
    assert spec.replicas == 1 and spec.revision_history_limit == 10 and spec.progress_deadline_seconds == 600
    assert spec.strategy.type == "RollingUpdate"
    assert spec.strategy.rolling_update.max_surge == "25%"
    container = spec.template.spec.containers[0]
    assert container.image_pull_policy == "IfNotPresent"
    assert spec.template.spec.restart_policy == "Always"


def test_pod_template_defaults_for_probes_env_and_volumes(server: KubeApiServer) -> None:
    body = deployment()
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    container["env"] = [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    body["spec"]["template"]["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "cfg"}}]
    spec = create(server, "deployments", body)["spec"]["template"]["spec"]
    probe = spec["containers"][0]["readinessProbe"]
    assert probe == {
        "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert spec["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert spec["volumes"][0]["configMap"]["defaultMode"] == 420
