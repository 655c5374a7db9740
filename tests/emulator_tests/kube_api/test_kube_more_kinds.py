"""Events, Leases, Secrets and ServiceAccounts; deletecollection, dryRun, unconditional updates."""

from __future__ import annotations

import datetime
import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from emulators.kube_api import KubeApiServer
from emulators.kube_api.testing import virtual_service


def test_events_can_be_recorded_listed_and_filtered(core: client.CoreV1Api) -> None:
    now = datetime.datetime.now(datetime.UTC)
    for kind, name in (("Service", "web"), ("Deployment", "web")):
        core.create_namespaced_event(
            "default",
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(generate_name=f"{name}."),
                involved_object=client.V1ObjectReference(kind=kind, name=name, namespace="default"),
                reason="Routed",
                message="route added",
                type="Normal",
                first_timestamp=now,
                last_timestamp=now,
                count=1,
                source=client.V1EventSource(component="service-router"),
            ),
        )
    found = core.list_namespaced_event("default", field_selector="involvedObject.kind=Service").items
    assert [(e.reason, e.involved_object.kind) for e in found] == [("Routed", "Service")]


def test_leases_support_leader_election_writes(api_client: client.ApiClient) -> None:
    coordination = client.CoordinationV1Api(api_client)
    now = datetime.datetime.now(datetime.UTC)
    lease = coordination.create_namespaced_lease(
        "kube-system",
        client.V1Lease(
            metadata=client.V1ObjectMeta(name="service-router"),
            spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15, acquire_time=now, renew_time=now),
        ),
    )
    lease.spec.holder_identity = "b"
    renewed = coordination.replace_namespaced_lease("service-router", "kube-system", lease)
    assert renewed.spec.holder_identity == "b"
    lease.spec.holder_identity = "c"  # stale resourceVersion: the other candidate lost the race
    with pytest.raises(ApiException) as err:
        coordination.replace_namespaced_lease("service-router", "kube-system", lease)
    assert err.value.status == 409


def test_secrets_default_to_opaque_and_service_accounts_exist(core: client.CoreV1Api) -> None:
    secret = core.create_namespaced_secret("default", {"metadata": {"name": "s"}, "data": {"k": "dg=="}})
    assert secret.type == "Opaque"
    account = core.create_namespaced_service_account("default", {"metadata": {"name": "router"}})
    assert account.metadata.uid


def test_deletecollection_with_label_selector(core: client.CoreV1Api, server: KubeApiServer) -> None:
    for name, team in (("a", "x"), ("b", "y"), ("c", "x")):
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": {"team": team}}})
    core.delete_collection_namespaced_config_map("default", label_selector="team=x")
    assert [c["metadata"]["name"] for c in server.objects("configmaps")] == ["b"]


def test_dry_run_does_not_persist(core: client.CoreV1Api, server: KubeApiServer) -> None:
    before = server.resource_version
    made = core.create_namespaced_config_map("default", {"metadata": {"name": "c"}}, dry_run="All")
    assert made.metadata.name == "c"
    assert server.objects("configmaps") == [] and server.resource_version == before


def test_custom_resource_put_needs_a_resource_version(
    with_vs_crd: KubeApiServer, custom: client.CustomObjectsApi
) -> None:
    custom.create_namespaced_custom_object("networking.istio.io", "v1", "default", "virtualservices", virtual_service())
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(
            "networking.istio.io", "v1", "default", "virtualservices", "web", virtual_service()
        )
    body = json.loads(err.value.body)
    assert err.value.status == 422
    assert body["details"]["causes"][0]["field"] == "metadata.resourceVersion"


def test_builtin_put_without_resource_version_is_unconditional(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    replaced = core.replace_namespaced_config_map("c", "default", {"metadata": {"name": "c"}, "data": {"a": "2"}})
    assert replaced.data == {"a": "2"}


def test_requested_cluster_ip_must_be_free(core: client.CoreV1Api) -> None:
    first = core.create_namespaced_service("default", {"metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_service(
            "default",
            {"metadata": {"name": "b"}, "spec": {"ports": [{"port": 80}], "clusterIP": first.spec.cluster_ip}},
        )
    assert err.value.status == 422 and "provided IP is already allocated" in json.loads(err.value.body)["message"]


def test_creating_in_a_terminating_namespace_is_forbidden(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "closing", "finalizers": ["example.com/hold"]}})
    core.delete_namespace("closing")
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("closing", {"metadata": {"name": "c"}})
    assert err.value.status == 403
    assert "because it is being terminated" in json.loads(err.value.body)["message"]


def test_stop_joins_every_connection_thread(kubeconfig: object, core: client.CoreV1Api) -> None:
    server = KubeApiServer().start()
    import urllib.request

    urllib.request.urlopen(server.url + "/version", timeout=5).read()
    httpd = server._httpd
    assert httpd is not None
    server.stop()
    assert not any(t.is_alive() for t in httpd.threads)


def test_rbac_objects_are_stored_and_role_ref_is_immutable(api_client: client.ApiClient) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    rbac.create_cluster_role(
        {
            "metadata": {"name": "router"},
            "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]}],
        }
    )
    binding = rbac.create_namespaced_role_binding(
        "default",
        {
            "metadata": {"name": "router"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "router"},
            "subjects": [{"kind": "ServiceAccount", "name": "router", "namespace": "default"}],
        },
    )
    binding.role_ref.name = "other"
    with pytest.raises(ApiException) as err:
        rbac.replace_namespaced_role_binding("router", "default", binding)
    assert err.value.status == 422 and "cannot change roleRef" in json.loads(err.value.body)["message"]


def test_pod_disruption_budgets_are_stored(api_client: client.ApiClient) -> None:
    policy = client.PolicyV1Api(api_client)
    made = policy.create_namespaced_pod_disruption_budget(
        "default",
        {"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}},
    )
    assert made.metadata.generation == 1 and made.spec.min_available == 1
