"""CRUD through the typed client: system metadata, resourceVersion, conflicts, errors as Status."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from emulators.kube_api import KubeApiServer
from emulators.kube_api.testing import deployment, service, wait_for


def status_of(err: ApiException) -> dict:
    return json.loads(err.body)


def rolled_out(apps: client.AppsV1Api, name: str = "web") -> client.V1Deployment:
    """Wait for the emulated rollout to finish (as ``kubectl rollout status``), so later writes do not race it."""

    def observed() -> client.V1Deployment | None:
        d = apps.read_namespaced_deployment(name, "default")
        s = d.status
        done = s and s.observed_generation == d.metadata.generation and (s.updated_replicas or 0) == d.spec.replicas
        return d if done and (s.replicas or 0) == (s.available_replicas or 0) == (s.updated_replicas or 0) else None

    return wait_for(observed)


def test_create_sets_uid_timestamp_generation_and_resource_version(apps: client.AppsV1Api) -> None:
    created = apps.create_namespaced_deployment("default", deployment())
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.generation == 1
    assert int(created.metadata.resource_version) > 0
    assert created.metadata.namespace == "default"


def test_resource_version_is_one_global_counter(apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    d = apps.create_namespaced_deployment("default", deployment())
    s = core.create_namespaced_service("default", service())
    c = core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "b"}})
    rvs = [int(o.metadata.resource_version) for o in (d, s, c)]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3


def test_get_list_update_delete_roundtrip(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    got = core.read_namespaced_config_map("cfg", "default")
    got.data["a"] = "2"
    updated = core.replace_namespaced_config_map("cfg", "default", got)
    assert updated.data == {"a": "2"}
    assert int(updated.metadata.resource_version) > int(got.metadata.resource_version)
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items] == ["cfg"]
    deleted = core.delete_namespaced_config_map("cfg", "default")
    assert deleted["status"] == "Success"  # this client method is typed as a plain object
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("cfg", "default")
    assert err.value.status == 404


def test_not_found_is_a_status_object(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment("missing", "default")
    body = status_of(err.value)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["reason"] == "NotFound" and body["code"] == 404
    assert body["message"] == 'deployments.apps "missing" not found'
    assert body["details"] == {"name": "missing", "group": "apps", "kind": "deployments"}


def test_create_twice_is_already_exists(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    with pytest.raises(ApiException) as err:
        apps.create_namespaced_deployment("default", deployment())
    body = status_of(err.value)
    assert (err.value.status, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'deployments.apps "web" already exists'


def test_update_with_stale_resource_version_conflicts(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    first = rolled_out(apps)
    fresh = apps.read_namespaced_deployment("web", "default")
    fresh.spec.replicas = 2
    apps.replace_namespaced_deployment("web", "default", fresh)
    first.spec.replicas = 3
    with pytest.raises(ApiException) as err:
        apps.replace_namespaced_deployment("web", "default", first)
    body = status_of(err.value)
    assert (err.value.status, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on deployments.apps "web": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_patch_carrying_stale_resource_version_conflicts(core: client.CoreV1Api) -> None:
    cm = core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    core.patch_namespaced_config_map("cfg", "default", {"data": {"a": "2"}})
    stale = {"metadata": {"resourceVersion": cm.metadata.resource_version}, "data": {"a": "3"}}
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("cfg", "default", stale)
    assert err.value.status == 409 and status_of(err.value)["reason"] == "Conflict"


def test_noop_update_keeps_resource_version(apps: client.AppsV1Api, server: KubeApiServer) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=2))
    settled = rolled_out(apps)
    before = server.resource_version
    again = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 2}})
    replaced = apps.replace_namespaced_deployment("web", "default", settled)  # as read: changes nothing
    assert again.metadata.resource_version == replaced.metadata.resource_version
    assert replaced.metadata.resource_version == settled.metadata.resource_version
    assert server.resource_version == before
    assert replaced.metadata.generation == 1


def test_generation_bumps_on_spec_change_only(apps: client.AppsV1Api, server: KubeApiServer) -> None:
    apps.create_namespaced_deployment("default", deployment())
    labelled = apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"tier": "x"}}})
    assert labelled.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 4}})
    assert scaled.metadata.generation == 2


def test_generation_bumps_on_annotation_change_of_deployment_like_the_real_strategy(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    annotated = apps.patch_namespaced_deployment("web", "default", {"metadata": {"annotations": {"a": "b"}}})
    assert annotated.metadata.generation == 2


def test_missing_namespace_is_not_found(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service("nowhere", service())
    body = status_of(err.value)
    assert err.value.status == 404
    assert body["message"] == 'namespaces "nowhere" not found'


def test_default_and_kube_system_exist(core: client.CoreV1Api) -> None:
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system"} <= names


def test_generate_name_appends_a_random_suffix(core: client.CoreV1Api) -> None:
    made = core.create_namespaced_config_map("default", {"metadata": {"generateName": "cfg-"}})
    assert made.metadata.name.startswith("cfg-") and len(made.metadata.name) == len("cfg-") + 5


def test_create_with_resource_version_is_rejected(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", {"metadata": {"name": "x", "resourceVersion": "5"}})
    assert err.value.status == 400


def test_list_across_namespaces(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "team-a"}})
    core.create_namespaced_service("default", service("one"))
    core.create_namespaced_service("team-a", service("two"))
    found = {(s.metadata.namespace, s.metadata.name) for s in core.list_service_for_all_namespaces().items}
    assert found == {("default", "one"), ("team-a", "two")}


def test_list_carries_the_current_resource_version(core: client.CoreV1Api, server: KubeApiServer) -> None:
    core.create_namespaced_service("default", service())
    listed = core.list_namespaced_service("default")
    assert listed.metadata.resource_version == str(server.resource_version)


def test_limit_and_continue_page_through_a_list(core: client.CoreV1Api) -> None:
    for i in range(5):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"cfg-{i}"}})
    first = core.list_namespaced_config_map("default", limit=2)
    assert [c.metadata.name for c in first.items] == ["cfg-0", "cfg-1"]
    assert first.metadata.remaining_item_count == 3
    second = core.list_namespaced_config_map("default", limit=2, _continue=first.metadata._continue)
    assert [c.metadata.name for c in second.items] == ["cfg-2", "cfg-3"]


def test_delete_returns_success_status_for_builtins(apps: client.AppsV1Api) -> None:
    created = apps.create_namespaced_deployment("default", deployment())
    result = apps.delete_namespaced_deployment("web", "default")
    assert result["status"] == "Success"
    assert result["details"]["uid"] == created.metadata.uid


def test_main_resource_update_ignores_status(apps: client.AppsV1Api, server: KubeApiServer) -> None:
    body = deployment()
    body["status"] = {"replicas": 99}
    created = apps.create_namespaced_deployment("default", body)
    assert created.status is None or created.status.replicas != 99


def test_status_subresource_writes_only_status(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    rolled_out(apps)
    current = apps.read_namespaced_deployment_status("web", "default")
    current.spec.replicas = 7
    current.status = client.V1DeploymentStatus(replicas=5, observed_generation=1)
    written = apps.replace_namespaced_deployment_status("web", "default", current)
    assert written.status.replicas == 5
    assert written.spec.replicas == 1
    assert written.metadata.generation == 1


def test_put_with_wrong_name_is_bad_request(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}})
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("cfg", "default", {"metadata": {"name": "other"}})
    assert err.value.status == 400


def test_request_log_records_verbs_users_and_status(core: client.CoreV1Api, server: KubeApiServer) -> None:
    server.clear_request_log()
    core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}})
    core.read_namespaced_config_map("cfg", "default")
    log = [r for r in server.request_log if r.resource == "configmaps"]
    assert [(r.method, r.verb, r.status, r.namespace, r.name) for r in log] == [
        ("POST", "create", 201, "default", ""),
        ("GET", "get", 200, "default", "cfg"),
    ]
    assert all(r.user == "test-token" for r in log)
    assert all("OpenAPI-Generator" in r.user_agent for r in log)
