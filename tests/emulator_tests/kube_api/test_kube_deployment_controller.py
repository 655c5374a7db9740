"""The deployment controller: status follows spec once the rollout over simulated Pods is done."""

from __future__ import annotations

from kubernetes import client

from emulators.kube_api import KubeApiServer
from emulators.kube_api.testing import deployment, wait_for


def observed(apps: client.AppsV1Api, generation: int) -> client.V1Deployment:
    """The Deployment once ``generation`` is rolled out, by ``kubectl rollout status``'s rule."""

    def check() -> client.V1Deployment | None:
        d = apps.read_namespaced_deployment("web", "default")
        s = d.status
        done = s and s.observed_generation == generation and (s.updated_replicas or 0) == d.spec.replicas
        return d if done and (s.replicas or 0) == (s.available_replicas or 0) == (s.updated_replicas or 0) else None

    return wait_for(check)


def test_new_deployment_becomes_available(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=3))
    status = observed(apps, 1).status
    assert (status.replicas, status.updated_replicas, status.ready_replicas, status.available_replicas) == (3, 3, 3, 3)
    conditions = {c.type: c for c in status.conditions}
    assert conditions["Available"].status == "True"
    assert conditions["Available"].reason == "MinimumReplicasAvailable"
    assert conditions["Progressing"].reason == "NewReplicaSetAvailable"


def test_scaling_updates_status_without_bumping_generation_again(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    observed(apps, 1)
    apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 5}})
    d = observed(apps, 2)
    assert d.status.available_replicas == 5
    assert d.metadata.generation == 2


def test_status_write_is_a_modified_event_that_keeps_generation(apps: client.AppsV1Api, server: KubeApiServer) -> None:
    created = apps.create_namespaced_deployment("default", deployment())
    d = observed(apps, 1)
    assert int(d.metadata.resource_version) > int(created.metadata.resource_version)
    events = [e for e in server.store._history if e.storage_key == "deployments.apps"]
    assert events[0].type == "ADDED" and {e.type for e in events[1:]} == {"MODIFIED"}
    assert {e.obj["metadata"]["generation"] for e in events} == {1}


def test_steady_state_writes_nothing(apps: client.AppsV1Api, server: KubeApiServer) -> None:
    apps.create_namespaced_deployment("default", deployment())
    observed(apps, 1)
    rv = server.resource_version
    apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"x": "y"}}})
    wait_for(lambda: server.resource_version == rv + 1)
    # the label change does not touch spec: the controller has nothing to do
    apps.read_namespaced_deployment("web", "default")
    assert server.resource_version == rv + 1


def test_scaled_to_zero_reports_no_replica_counts(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=0))
    status = observed(apps, 1).status
    assert status.replicas is None and status.available_replicas is None


def revision(apps: client.AppsV1Api) -> str | None:
    return (apps.read_namespaced_deployment("web", "default").metadata.annotations or {}).get(
        "deployment.kubernetes.io/revision"
    )


def test_revision_annotation_follows_pod_template_changes(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    assert observed(apps, 1).metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 2}})
    observed(apps, 2)
    assert revision(apps) == "1"  # scaling keeps the ReplicaSet
    apps.patch_namespaced_deployment(
        "web", "default", {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}}
    )
    observed(apps, 3)
    wait_for(lambda: revision(apps) == "2")


def test_revision_is_written_through_status_so_generation_stays(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    d = observed(apps, 1)
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert d.metadata.generation == 1


def test_status_endpoint_may_change_annotations_but_not_spec_or_labels(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())
    d = observed(apps, 1)
    d.metadata.annotations["note"] = "via status"
    d.metadata.labels = {"sneaky": "yes"}
    d.spec.replicas = 9
    written = apps.replace_namespaced_deployment_status("web", "default", d)
    assert written.metadata.annotations["note"] == "via status"
    assert written.metadata.labels is None and written.spec.replicas == 1
