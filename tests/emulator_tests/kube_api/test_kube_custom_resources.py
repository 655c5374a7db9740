"""Custom resources: CRDs register kinds; objects are validated against the CRD's schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from emulators.kube_api import BUNDLED_VIRTUAL_SERVICE_CRD, ApiError, KubeApiServer
from emulators.kube_api.testing import virtual_service

GROUP = "networking.istio.io"


def create_vs(
    custom: client.CustomObjectsApi, body: dict[str, Any], version: str = "v1", **kwargs: Any
) -> dict[str, Any]:
    return custom.create_namespaced_custom_object(GROUP, version, "default", "virtualservices", body, **kwargs)


def rich_virtual_service(version: str) -> dict[str, Any]:
    body = virtual_service(version=version)
    body["spec"]["gateways"] = ["mesh"]
    body["spec"]["http"] = [
        {
            "name": "pr-12",
            "match": [
                {
                    "headers": {"service-router-web-default": {"exact": "web-pr12.default"}},
                    "uri": {"prefix": "/"},
                    "method": {"regex": "GET|POST"},
                }
            ],
            "route": [
                {"destination": {"host": "web-pr12.default.svc.cluster.local", "port": {"number": 80}}, "weight": 100}
            ],
            "rewrite": {"uri": "/"},
            "timeout": "5s",
            "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx"},
            "headers": {"request": {"set": {"x-pr": "12"}}},
        },
        {"name": "default", "route": [{"destination": {"host": "web", "subset": "v1"}}]},
    ]
    return body


def test_bundled_crd_file_exists_and_is_a_crd() -> None:
    assert BUNDLED_VIRTUAL_SERVICE_CRD.is_file()
    assert "kind: CustomResourceDefinition" in BUNDLED_VIRTUAL_SERVICE_CRD.read_text()


def test_crd_gets_established_status(with_vs_crd: KubeApiServer) -> None:
    [crd] = with_vs_crd.objects("customresourcedefinitions")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd["status"]["storedVersions"] == ["v1"]


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_valid_virtual_service_accepted_in_every_version(
    with_vs_crd: KubeApiServer, custom: client.CustomObjectsApi, version: str
) -> None:
    created = create_vs(custom, rich_virtual_service(version), version)
    assert created["apiVersion"] == f"{GROUP}/{version}"
    assert created["metadata"]["generation"] == 1


def test_one_storage_many_versions(with_vs_crd: KubeApiServer, custom: client.CustomObjectsApi) -> None:
    create_vs(custom, virtual_service(version="v1alpha3"), "v1alpha3")
    got = custom.get_namespaced_custom_object(GROUP, "v1", "default", "virtualservices", "web")
    assert got["apiVersion"] == f"{GROUP}/v1"
    listed = custom.list_namespaced_custom_object(GROUP, "v1beta1", "default", "virtualservices")
    assert [i["apiVersion"] for i in listed["items"]] == [f"{GROUP}/v1beta1"]


def test_unknown_field_is_rejected_under_strict(with_vs_crd: KubeApiServer, custom: client.CustomObjectsApi) -> None:
    body = virtual_service()
    body["spec"]["http"][0]["rout"] = []
    with pytest.raises(ApiException) as err:
        create_vs(custom, body, field_validation="Strict")
    assert err.value.status == 400
    assert json.loads(err.value.body)["message"] == (
        'VirtualService in version "v1" cannot be handled as a VirtualService: '
        'strict decoding error: unknown field "spec.http[0].rout"'
    )


def test_wrong_type_is_invalid(with_vs_crd: KubeApiServer, custom: client.CustomObjectsApi) -> None:
    body = virtual_service()
    body["spec"]["hosts"] = "web"
    with pytest.raises(ApiException) as err:
        create_vs(custom, body)
    status = json.loads(err.value.body)
    assert (err.value.status, status["reason"]) == (422, "Invalid")
    assert status["details"]["kind"] == "VirtualService"
    assert status["details"]["causes"][0]["field"].startswith("spec.hosts")


def test_generation_ignores_metadata_and_status(with_vs_crd: KubeApiServer, custom: client.CustomObjectsApi) -> None:
    create_vs(custom, virtual_service())
    labelled = custom.patch_namespaced_custom_object(
        GROUP, "v1", "default", "virtualservices", "web", {"metadata": {"labels": {"a": "b"}}}
    )
    assert labelled["metadata"]["generation"] == 1
    status = custom.patch_namespaced_custom_object_status(
        GROUP, "v1", "default", "virtualservices", "web", {"status": {"observedGeneration": 1}}
    )
    assert status["metadata"]["generation"] == 1 and status["status"] == {"observedGeneration": 1}
    changed = custom.patch_namespaced_custom_object(
        GROUP, "v1", "default", "virtualservices", "web", {"spec": {"gateways": ["mesh"]}}
    )
    assert changed["metadata"]["generation"] == 2
    assert changed["status"] == {"observedGeneration": 1}


def test_replace_with_stale_resource_version_conflicts(
    with_vs_crd: KubeApiServer, custom: client.CustomObjectsApi
) -> None:
    first = create_vs(custom, virtual_service())
    fresh = copy.deepcopy(first)
    fresh["spec"]["gateways"] = ["mesh"]
    custom.replace_namespaced_custom_object(GROUP, "v1", "default", "virtualservices", "web", fresh)
    first["spec"]["gateways"] = ["other"]
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(GROUP, "v1", "default", "virtualservices", "web", first)
    message = json.loads(err.value.body)["message"]
    assert err.value.status == 409
    assert message.startswith('Operation cannot be fulfilled on virtualservices.networking.istio.io "web"')


def test_delete_returns_the_object(with_vs_crd: KubeApiServer, custom: client.CustomObjectsApi) -> None:
    create_vs(custom, virtual_service())
    deleted = custom.delete_namespaced_custom_object(GROUP, "v1", "default", "virtualservices", "web")
    assert deleted["metadata"]["name"] == "web"
    assert with_vs_crd.objects("virtualservices") == []


def test_crd_name_must_be_plural_dot_group(server: KubeApiServer) -> None:
    import yaml

    crd = yaml.safe_load(BUNDLED_VIRTUAL_SERVICE_CRD.read_text())
    crd["metadata"]["name"] = "wrong.networking.istio.io"
    with pytest.raises(ApiError, match=r"spec\.names\.plural"):
        server.apply_crd(crd)


def test_apply_crd_twice_updates_in_place(server: KubeApiServer) -> None:
    first = server.apply_crd_files([BUNDLED_VIRTUAL_SERVICE_CRD])[0]
    second = server.apply_crd_files([BUNDLED_VIRTUAL_SERVICE_CRD])[0]
    assert first["metadata"]["uid"] == second["metadata"]["uid"]


# --- Istio's official CRDs (../shared) ---------------------------------------------------------------
@pytest.fixture
def istio(server: KubeApiServer, shared_dir: Path) -> KubeApiServer:
    server.apply_crd_files(sorted((shared_dir / "schemas" / "istio").glob("*.yaml")))
    return server


def test_istio_crds_register_their_kinds(istio: KubeApiServer) -> None:
    kinds = {(rt.group, rt.version, rt.kind) for rt in istio.registry.all() if not rt.builtin}
    for version in ("v1", "v1beta1", "v1alpha3"):
        assert (GROUP, version, "VirtualService") in kinds
    assert (GROUP, "v1alpha3", "EnvoyFilter") in kinds


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_istio_schema_accepts_a_valid_virtual_service(
    istio: KubeApiServer, custom: client.CustomObjectsApi, version: str
) -> None:
    created = create_vs(custom, rich_virtual_service(version), version)
    assert created["spec"]["http"][0]["name"] == "pr-12"


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_istio_schema_rejects_unknown_field(
    istio: KubeApiServer, custom: client.CustomObjectsApi, version: str
) -> None:
    body = rich_virtual_service(version)
    body["spec"]["http"][0]["match"][0]["headerz"] = {}
    with pytest.raises(ApiException) as err:
        create_vs(custom, body, version, field_validation="Strict")
    assert err.value.status == 400
    assert 'unknown field "spec.http[0].match[0].headerz"' in json.loads(err.value.body)["message"]


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_istio_schema_rejects_wrong_type(istio: KubeApiServer, custom: client.CustomObjectsApi, version: str) -> None:
    body = rich_virtual_service(version)
    body["spec"]["http"][0]["route"][0]["weight"] = "heavy"
    with pytest.raises(ApiException) as err:
        create_vs(custom, body, version)
    assert (err.value.status, json.loads(err.value.body)["reason"]) == (422, "Invalid")


@pytest.mark.parametrize("timeout", ["5", "0.5ms", "five seconds"])
def test_bad_durations_break_the_crd_cel_rule(
    with_vs_crd: KubeApiServer, custom: client.CustomObjectsApi, timeout: str
) -> None:
    body = rich_virtual_service("v1")
    body["spec"]["http"][0]["timeout"] = timeout
    with pytest.raises(ApiException) as err:
        create_vs(custom, body)
    status = json.loads(err.value.body)
    assert (err.value.status, status["reason"]) == (422, "Invalid")
    # "0.5ms" parses and is too short (false); "5" does not parse: cel-go's conversion error, as
    # kube-apiserver words an evaluation error ("<error> evaluating rule: <message>").
    rule = "must be a valid duration greater than 1ms"
    if timeout != "0.5ms":
        rule = f"type conversion error from 'string' to 'google.protobuf.Duration' evaluating rule: {rule}"
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.http[0].timeout",
            "message": f'Invalid value: "string": {rule}',
        }
    ]


@pytest.mark.parametrize("timeout", ["5s", "1ms", "1h2m0.5s", "250ms"])
def test_good_durations_pass_the_crd_cel_rule(
    with_vs_crd: KubeApiServer, custom: client.CustomObjectsApi, timeout: str
) -> None:
    body = rich_virtual_service("v1")
    body["spec"]["http"][0]["retries"]["perTryTimeout"] = timeout
    assert create_vs(custom, body)["spec"]["http"][0]["retries"]["perTryTimeout"] == timeout


def test_istio_cel_duration_rule_is_enforced(istio: KubeApiServer, custom: client.CustomObjectsApi) -> None:
    body = rich_virtual_service("v1")
    body["spec"]["http"][0]["retries"]["perTryTimeout"] = "2"
    with pytest.raises(ApiException) as err:
        create_vs(custom, body)
    assert err.value.status == 422
    assert json.loads(err.value.body)["details"]["causes"][0]["field"] == "spec.http[0].retries.perTryTimeout"


def test_deleting_the_crd_deletes_its_objects_and_ends_their_watches(
    with_vs_crd: KubeApiServer, custom: client.CustomObjectsApi
) -> None:
    import urllib.request

    create_vs(custom, virtual_service())
    path = "/apis/networking.istio.io/v1/namespaces/default/virtualservices?watch=true"
    with urllib.request.urlopen(with_vs_crd.url + path, timeout=5) as resp:
        assert json.loads(resp.readline())["type"] == "ADDED"
        rt = with_vs_crd.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert rt is not None
        with_vs_crd.api.delete(rt, "", "virtualservices.networking.istio.io", {})
        rest = [json.loads(line) for line in resp.read().splitlines() if line.strip()]  # ends, not hangs
    assert [e["type"] for e in rest] == ["DELETED"]
    assert with_vs_crd.objects("virtualservices") == []
