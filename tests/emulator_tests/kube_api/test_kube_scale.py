"""The Deployment scale subresource (autoscaling/v1 Scale) and watch output as Tables."""

from __future__ import annotations

import json
import urllib.request

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from emulators.kube_api import KubeApiServer
from emulators.kube_api.testing import deployment, wait_for


def test_read_scale_reflects_the_deployment(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=2))
    wait_for(lambda: (apps.read_namespaced_deployment("web", "default").status or client.V1DeploymentStatus()).replicas)
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert (scale.spec.replicas, scale.status.replicas, scale.status.selector) == (2, 2, "app=web")


def test_patch_scale_changes_only_replicas(apps: client.AppsV1Api) -> None:
    created = apps.create_namespaced_deployment("default", deployment())
    scaled = apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}})
    assert scaled.spec.replicas == 4
    d = apps.read_namespaced_deployment("web", "default")
    assert d.spec.replicas == 4 and d.metadata.generation == created.metadata.generation + 1
    assert d.spec.template == created.spec.template


def test_replace_scale_with_stale_resource_version_conflicts(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    scale = apps.read_namespaced_deployment_scale("web", "default")
    apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"x": "y"}}})
    scale.spec.replicas = 2
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_deployment_scale("web", "default", scale)
    assert err.value.status == 409


def test_watch_as_table_sends_one_row_tables(server: KubeApiServer, apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    req = urllib.request.Request(
        server.url + "/apis/apps/v1/namespaces/default/deployments?watch=true",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        event = json.loads(resp.readline())
    table = event["object"]
    assert (event["type"], table["kind"]) == ("ADDED", "Table")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert table["rows"][0]["cells"][0] == "web"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
