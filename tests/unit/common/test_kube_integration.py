"""KubeClient against the Kubernetes API emulator: the real client path end to end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from controller_common import errors, events
from controller_common.kube import CONFIGMAPS, DEPLOYMENTS, EVENTS, SERVICES, KubeClient, Resource

kube_api = pytest.importorskip("emulators.kube_api")


def service(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "data": data}


def requests(server: Any, method: str) -> list[Any]:
    return [r for r in server.request_log if getattr(r, "method", None) == method]


def test_crud_round_trip(client: KubeClient) -> None:
    created = client.create(SERVICES, service("echo", app="echo"))
    assert created["metadata"]["uid"]
    got = client.get(SERVICES, "default", "echo")
    assert got["spec"]["selector"] == {"app": "echo"}
    items, rv = client.list(SERVICES, "default", label_selector="app=echo")
    assert [i["metadata"]["name"] for i in items] == ["echo"]
    assert items[0]["kind"] == "Service" and items[0]["apiVersion"] == "v1"
    assert rv
    got["metadata"]["labels"]["tier"] = "web"
    replaced = client.replace(SERVICES, got)
    assert replaced["metadata"]["labels"]["tier"] == "web"
    client.delete(SERVICES, "default", "echo")
    with pytest.raises(errors.NotFound):
        client.get(SERVICES, "default", "echo")


def test_create_twice_is_already_exists(client: KubeClient) -> None:
    client.create(CONFIGMAPS, configmap("a"))
    with pytest.raises(errors.AlreadyExists):
        client.create(CONFIGMAPS, configmap("a"))


def test_stale_replace_is_conflict(client: KubeClient) -> None:
    client.create(CONFIGMAPS, configmap("a", k="1"))
    first = client.get(CONFIGMAPS, "default", "a")
    second = client.get(CONFIGMAPS, "default", "a")
    first["data"]["k"] = "2"
    client.replace(CONFIGMAPS, first)
    second["data"]["k"] = "3"
    with pytest.raises(errors.Conflict) as info:
        client.replace(CONFIGMAPS, second)
    assert errors.is_transient(info.value)


@pytest.mark.parametrize(
    ("patch_type", "patch"),
    [
        ("merge", {"data": {"k": "patched"}}),
        ("json", [{"op": "replace", "path": "/data/k", "value": "patched"}]),
        ("strategic", {"data": {"k": "patched"}}),
    ],
    ids=["merge", "json", "strategic"],
)
def test_patch(client: KubeClient, patch_type: str, patch: Any) -> None:
    client.create(CONFIGMAPS, configmap("a", k="1", other="kept"))
    patched = client.patch(CONFIGMAPS, "default", "a", patch, patch_type=patch_type)
    assert patched["data"] == {"k": "patched", "other": "kept"}


def test_delete_with_stale_uid_precondition_is_conflict(client: KubeClient) -> None:
    client.create(CONFIGMAPS, configmap("a"))
    with pytest.raises(errors.Conflict):
        client.delete(CONFIGMAPS, "default", "a", preconditions={"uid": "not-the-uid"})
    assert client.get(CONFIGMAPS, "default", "a")


def test_watch_from_list_resource_version_sees_changes(client: KubeClient) -> None:
    client.create(CONFIGMAPS, configmap("before"))
    _, rv = client.list(CONFIGMAPS, "default")
    client.create(CONFIGMAPS, configmap("after"))
    client.delete(CONFIGMAPS, "default", "after")
    seen = []
    watch = client.watch(CONFIGMAPS, "default", resource_version=rv, timeout_seconds=5)
    try:
        for event_type, obj in watch:
            if event_type == "BOOKMARK":
                continue
            seen.append((event_type, obj["metadata"]["name"]))
            if len(seen) == 2:
                break
    finally:
        watch.close()
    assert seen == [("ADDED", "after"), ("DELETED", "after")]


def test_watch_from_compacted_resource_version_is_gone(client: KubeClient, server: Any) -> None:
    client.create(CONFIGMAPS, configmap("a"))
    _, rv = client.list(CONFIGMAPS, "default")
    client.create(CONFIGMAPS, configmap("b"))
    server.compact()
    with pytest.raises(errors.Gone):
        for _ in client.watch(CONFIGMAPS, "default", resource_version=rv, timeout_seconds=5):
            pass


def test_read_retries_an_injected_blip(client: KubeClient, server: Any) -> None:
    client.create(CONFIGMAPS, configmap("a"))
    server.faults.inject(verb="get", resource="configmaps", status=503, times=1, retry_after=0)
    assert client.get(CONFIGMAPS, "default", "a")["metadata"]["name"] == "a"


def test_writes_surface_injected_faults_without_retrying(client: KubeClient, server: Any) -> None:
    server.faults.inject(verb="create", resource="configmaps", status=500, times=1)
    with pytest.raises(errors.ServerError):
        client.create(CONFIGMAPS, configmap("a"))
    assert client.create(CONFIGMAPS, configmap("a"))["metadata"]["name"] == "a", "one failure, not retried"


def test_persistent_read_fault_gives_up_after_a_few_attempts(client: KubeClient, server: Any) -> None:
    server.faults.inject(verb="list", resource="configmaps", status=429, rate=1.0, retry_after=0)
    with pytest.raises(errors.TooManyRequests):
        client.list(CONFIGMAPS, "default")


def test_deployment_with_group_path(client: KubeClient) -> None:
    deployment = {
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "echo"}},
            "template": {
                "metadata": {"labels": {"app": "echo"}},
                "spec": {"containers": [{"name": "echo", "image": "echo:1"}]},
            },
        },
    }
    created = client.create(DEPLOYMENTS, deployment)
    assert created["kind"] == "Deployment" and created["apiVersion"] == "apps/v1"


def test_server_preferred_version_for_istio(client: KubeClient, server: Any) -> None:
    assert client.server_preferred_version("networking.istio.io", ("v1", "v1beta1", "v1alpha3")) is None
    server.apply_crd_files([kube_api.BUNDLED_VIRTUAL_SERVICE_CRD])
    version = client.server_preferred_version("networking.istio.io", ("v1", "v1beta1", "v1alpha3"))
    assert version in ("v1", "v1beta1", "v1alpha3")
    virtual_services = Resource("networking.istio.io", version, "virtualservices", "VirtualService")  # type: ignore[arg-type]
    assert client.list(virtual_services, "default")[0] == []


def test_record_event_creates_a_core_event(client: KubeClient) -> None:
    origin = client.create(CONFIGMAPS, configmap("origin"))
    events.EventRecorder().record(
        client, involved=origin, reason="Tested", message="hello", event_type="Normal", component="tests"
    )
    items, _ = client.list(EVENTS, "default")
    (event,) = [e for e in items if e["reason"] == "Tested"]
    assert event["involvedObject"]["uid"] == origin["metadata"]["uid"]
    assert event["source"]["component"] == "tests"


def _writes_of_an_unknown_field(client: KubeClient) -> dict[str, Callable[[], Any]]:
    def replace() -> Any:
        current = client.get(SERVICES, "default", "echo")
        current["spec"]["portz"] = []
        return client.replace(SERVICES, current)

    def replace_status() -> Any:
        current = client.get(SERVICES, "default", "echo")
        current["status"] = {"loadBalancer": {}, "colour": "red"}
        return client.replace_status(SERVICES, current)

    with_typo = service("typo")
    with_typo["spec"]["portz"] = []
    return {
        "create": lambda: client.create(SERVICES, with_typo),
        "replace": replace,
        "replace_status": replace_status,
        "merge-patch": lambda: client.patch(SERVICES, "default", "echo", {"spec": {"portz": []}}),
        "strategic-patch": lambda: client.patch(
            SERVICES, "default", "echo", {"spec": {"portz": []}}, patch_type="strategic"
        ),
        "json-patch": lambda: client.patch(
            SERVICES, "default", "echo", [{"op": "add", "path": "/spec/portz", "value": []}], patch_type="json"
        ),
    }


@pytest.mark.parametrize(
    "write", ["create", "replace", "replace_status", "merge-patch", "strategic-patch", "json-patch"]
)
def test_a_write_with_an_unknown_field_fails_loudly_naming_it(server: Any, client: KubeClient, write: str) -> None:
    """The server's default (Warn) would store the object without the field and only warn: the
    "write succeeded but the field is gone" bug that a real cluster would hide."""
    client.create(SERVICES, service("echo"))
    with pytest.raises(errors.BadRequest) as info:
        _writes_of_an_unknown_field(client)[write]()
    assert "strict decoding error: unknown field" in str(info.value)
    assert '"spec.portz"' in str(info.value) or '"status.colour"' in str(info.value)
    assert all(
        r.query.get("fieldValidation") == "Strict" for r in server.request_log if r.is_write and r.verb != "delete"
    )
