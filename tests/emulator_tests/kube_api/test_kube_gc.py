"""Finalizers, deletionTimestamp and garbage collection through ownerReferences."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from emulators.kube_api import KubeApiServer
from emulators.kube_api.testing import deployment, service, wait_for


def owned_service(name: str, owner: Any) -> dict[str, Any]:
    body = service(name)
    body["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": owner.metadata.name,
            "uid": owner.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return body


def names(server: KubeApiServer, plural: str) -> list[str]:
    return [o["metadata"]["name"] for o in server.objects(plural)]


def test_delete_with_finalizer_sets_deletion_timestamp_and_keeps_object(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c", "finalizers": ["example.com/hold"]}})
    core.delete_namespaced_config_map("c", "default")
    kept = core.read_namespaced_config_map("c", "default")
    assert kept.metadata.deletion_timestamp is not None
    assert kept.metadata.deletion_grace_period_seconds == 0


def test_removing_last_finalizer_deletes(core: client.CoreV1Api, server: KubeApiServer) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c", "finalizers": ["example.com/hold"]}})
    core.delete_namespaced_config_map("c", "default")
    rv = server.resource_version
    core.patch_namespaced_config_map("c", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("c", "default")
    assert err.value.status == 404
    events = [e for e in server.store._history if e.rv > rv]
    assert [e.type for e in events] == ["DELETED"]


def test_finalizers_cannot_be_added_while_deleting(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c", "finalizers": ["a.example/x"]}})
    core.delete_namespaced_config_map("c", "default")
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("c", "default", {"metadata": {"finalizers": ["a.example/x", "b.example/y"]}})
    assert err.value.status == 422
    assert "no new finalizers can be added" in json.loads(err.value.body)["message"]


def test_delete_twice_keeps_the_first_deletion_timestamp(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c", "finalizers": ["a.example/x"]}})
    core.delete_namespaced_config_map("c", "default")
    first = core.read_namespaced_config_map("c", "default")
    core.delete_namespaced_config_map("c", "default")
    second = core.read_namespaced_config_map("c", "default")
    assert first.metadata.deletion_timestamp == second.metadata.deletion_timestamp
    assert first.metadata.resource_version == second.metadata.resource_version


def test_background_deletion_collects_dependents(
    apps: client.AppsV1Api, core: client.CoreV1Api, server: KubeApiServer
) -> None:
    owner = apps.create_namespaced_deployment("default", deployment())
    core.create_namespaced_service("default", owned_service("dep", owner))
    core.create_namespaced_service("default", service("free"))
    apps.delete_namespaced_deployment("web", "default", propagation_policy="Background")
    wait_for(lambda: names(server, "services") == ["free"])


def test_dependent_with_another_live_owner_loses_only_the_reference(
    apps: client.AppsV1Api, core: client.CoreV1Api, server: KubeApiServer
) -> None:
    a = apps.create_namespaced_deployment("default", deployment("a"))
    b = apps.create_namespaced_deployment("default", deployment("b"))
    body = owned_service("dep", a)
    body["metadata"]["ownerReferences"].append(
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "b", "uid": b.metadata.uid}
    )
    core.create_namespaced_service("default", body)
    apps.delete_namespaced_deployment("a", "default")
    wait_for(lambda: [r["name"] for r in server.objects("services")[0]["metadata"]["ownerReferences"]] == ["b"])


def test_foreground_deletion_waits_for_dependents(
    apps: client.AppsV1Api, core: client.CoreV1Api, server: KubeApiServer
) -> None:
    owner = apps.create_namespaced_deployment("default", deployment())
    dep = owned_service("dep", owner)
    dep["metadata"]["finalizers"] = ["example.com/hold"]
    core.create_namespaced_service("default", dep)
    apps.delete_namespaced_deployment("web", "default", propagation_policy="Foreground")
    held = apps.read_namespaced_deployment("web", "default")
    assert "foregroundDeletion" in held.metadata.finalizers and held.metadata.deletion_timestamp
    wait_for(lambda: server.objects("services")[0]["metadata"].get("deletionTimestamp"))
    assert names(server, "deployments") == ["web"]  # still waiting for its dependent
    core.patch_namespaced_service("dep", "default", {"metadata": {"finalizers": None}})
    wait_for(lambda: names(server, "deployments") == [] and names(server, "services") == [])


def test_orphan_deletion_strips_owner_references(
    apps: client.AppsV1Api, core: client.CoreV1Api, server: KubeApiServer
) -> None:
    owner = apps.create_namespaced_deployment("default", deployment())
    core.create_namespaced_service("default", owned_service("dep", owner))
    apps.delete_namespaced_deployment("web", "default", body=client.V1DeleteOptions(propagation_policy="Orphan"))
    wait_for(lambda: names(server, "deployments") == [])
    [svc] = server.objects("services")
    assert "ownerReferences" not in svc["metadata"]


def test_dependents_in_other_namespaces_are_not_matched(
    apps: client.AppsV1Api, core: client.CoreV1Api, server: KubeApiServer
) -> None:
    core.create_namespace({"metadata": {"name": "other"}})
    owner = apps.create_namespaced_deployment("default", deployment())
    core.create_namespaced_service("default", owned_service("same-ns", owner))
    # a reference to an owner that does not exist in the dependent's namespace is dangling
    core.create_namespaced_service("other", owned_service("other-ns", owner))
    wait_for(lambda: [o["metadata"]["name"] for o in server.objects("services")] == ["same-ns"])


def test_delete_precondition_on_uid(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map(
            "c", "default", body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="x"))
        )
    assert err.value.status == 409


def test_deleting_a_namespace_removes_its_content(core: client.CoreV1Api, server: KubeApiServer) -> None:
    core.create_namespace({"metadata": {"name": "gone"}})
    core.create_namespaced_config_map("gone", {"metadata": {"name": "c"}})
    core.delete_namespace("gone")
    wait_for(lambda: "gone" not in names(server, "namespaces"))
    assert server.objects("configmaps", "gone") == []


def test_background_deletion_cascades_through_a_chain(
    apps: client.AppsV1Api, core: client.CoreV1Api, server: KubeApiServer
) -> None:
    owner = apps.create_namespaced_deployment("default", deployment())
    child = core.create_namespaced_config_map(
        "default",
        {
            "metadata": {
                "name": "child",
                "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": owner.metadata.uid}
                ],
            }
        },
    )
    core.create_namespaced_secret(
        "default",
        {
            "metadata": {
                "name": "grandchild",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "child", "uid": child.metadata.uid}
                ],
            }
        },
    )
    apps.delete_namespaced_deployment("web", "default")
    wait_for(lambda: names(server, "configmaps") == [] and names(server, "secrets") == [])
