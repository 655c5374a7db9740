"""metadata.managedFields: each writer owns the fields it changed, under its fieldManager name."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from emulators.kube_api import KubeApiServer
from emulators.kube_api.testing import deployment, wait_for


def entries(server: KubeApiServer, plural: str = "deployments") -> dict[tuple[str, str], dict[str, Any]]:
    meta = server.objects(plural)[0]["metadata"]
    return {(e["manager"], e.get("subresource", "")): e for e in meta.get("managedFields", [])}


def test_create_records_the_field_manager_and_fields_v1(apps: client.AppsV1Api, server: KubeApiServer) -> None:
    apps.create_namespaced_deployment("default", deployment(), field_manager="replicator")
    entry = entries(server)[("replicator", "")]
    assert (entry["operation"], entry["apiVersion"], entry["fieldsType"]) == ("Update", "apps/v1", "FieldsV1")
    spec = entry["fieldsV1"]["f:spec"]
    assert spec["f:selector"] == {}  # an atomic map is owned whole
    container = spec["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}']
    assert {".", "f:name", "f:image", "f:imagePullPolicy"} <= set(container)  # defaults belong to the creator


def test_unnamed_writers_are_named_after_their_user_agent(core: client.CoreV1Api, server: KubeApiServer) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    assert [m for m, _ in entries(server, "configmaps")] == ["OpenAPI-Generator"]


def test_a_second_writer_takes_over_only_what_it_changed(apps: client.AppsV1Api, server: KubeApiServer) -> None:
    apps.create_namespaced_deployment("default", deployment(), field_manager="first")
    apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}}, field_manager="second")
    found = entries(server)
    assert found[("second", "")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in found[("first", "")]["fieldsV1"]["f:spec"]
    assert "f:template" in found[("first", "")]["fieldsV1"]["f:spec"]


def test_the_deployment_controller_owns_status(apps: client.AppsV1Api, server: KubeApiServer) -> None:
    apps.create_namespaced_deployment("default", deployment())
    wait_for(lambda: ("kube-controller-manager", "status") in entries(server))
    status = entries(server)[("kube-controller-manager", "status")]["fieldsV1"]["f:status"]
    assert 'k:{"type":"Available"}' in status["f:conditions"]


def test_noop_writes_leave_managed_fields_alone(core: client.CoreV1Api, server: KubeApiServer) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    before = server.objects("configmaps")[0]["metadata"]["managedFields"]
    core.patch_namespaced_config_map("c", "default", {"data": {"a": "1"}}, field_manager="other")
    assert server.objects("configmaps")[0]["metadata"]["managedFields"] == before


def test_removed_fields_leave_every_owner(core: client.CoreV1Api, server: KubeApiServer) -> None:
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}, field_manager="creator"
    )
    core.patch_namespaced_config_map("c", "default", {"data": {"b": None}}, field_manager="pruner")
    fields = entries(server, "configmaps")[("creator", "")]["fieldsV1"]["f:data"]
    assert "f:b" not in fields and "f:a" in fields


def test_field_manager_names_are_limited_to_128_bytes(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", {"metadata": {"name": "c"}}, field_manager="m" * 129)
    assert err.value.status == 422
