"""``fieldValidation`` as kube-apiserver answers it: Warn by default, Strict and Ignore on request.

Warn (also what a request without the parameter gets): the write succeeds, unknown fields are
dropped, and each unknown or duplicate field gets its own ``Warning: 299 - "..."`` header. Strict:
400 naming every unknown and duplicate field. Ignore: dropped without a word. For every write
verb (create, update, each patch type, server-side apply) and for custom resources, whose
schemas prune unknown fields unless ``x-kubernetes-preserve-unknown-fields``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from emulators.kube_api import KubeApiServer
from emulators.kube_api.testing import deployment, virtual_service

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
VIRTUAL_SERVICES = "/apis/networking.istio.io/v1/namespaces/default/virtualservices"


def send(
    server: KubeApiServer,
    method: str,
    path: str,
    body: Any,
    *,
    content_type: str = "application/json",
    **query: str,
) -> requests.Response:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.request(
        method, server.url + path, params=query, data=data, headers={"Content-Type": content_type}, timeout=10
    )


def warnings_of(response: requests.Response) -> list[str]:
    """Each ``Warning`` header on its own (``requests`` would join repeated headers with commas)."""
    return response.raw.headers.getlist("Warning")


def with_unknown_fields() -> dict[str, Any]:
    body = deployment()
    body["spec"]["foo"] = 1
    body["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    return body


def stored_spec(server: KubeApiServer) -> dict[str, Any]:
    [stored] = server.objects("deployments")
    return stored["spec"]


def test_no_field_validation_is_warn_one_header_per_field(server: KubeApiServer) -> None:
    response = send(server, "POST", DEPLOYMENTS, with_unknown_fields())
    assert response.status_code == 201, response.text
    assert warnings_of(response) == [
        '299 - "unknown field \\"spec.foo\\""',
        '299 - "unknown field \\"spec.template.spec.containers[0].imagee\\""',
    ]
    spec = stored_spec(server)
    assert "foo" not in spec and "imagee" not in spec["template"]["spec"]["containers"][0]


def test_official_client_without_field_validation_succeeds_and_drops_the_field(
    server: KubeApiServer, api_client: client.ApiClient
) -> None:
    """The dynamic client sends the dict as it is (the typed one refuses unknown fields itself) and
    exposes no warnings: on a real cluster this write "works" and the field is silently gone."""
    deployments = DynamicClient(api_client).resources.get(api_version="apps/v1", kind="Deployment")
    created = deployments.create(body=with_unknown_fields(), namespace="default")
    assert created.metadata.uid
    spec = stored_spec(server)
    assert "foo" not in spec and "imagee" not in spec["template"]["spec"]["containers"][0]


def test_strict_names_every_unknown_and_duplicate_field(server: KubeApiServer) -> None:
    text = json.dumps(with_unknown_fields())
    text = text.replace('"selector"', '"minReadySeconds": 1, "minReadySeconds": 2, "selector"', 1)
    assert text.count('"minReadySeconds"') == 2
    response = send(server, "POST", DEPLOYMENTS, text, fieldValidation="Strict")
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"
    assert response.json()["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'duplicate field "spec.minReadySeconds", unknown field "spec.foo", '
        'unknown field "spec.template.spec.containers[0].imagee"'
    )
    assert server.objects("deployments") == []


def test_duplicate_field_under_warn_keeps_the_last_and_warns(server: KubeApiServer) -> None:
    text = json.dumps(deployment()).replace('"selector"', '"minReadySeconds": 1, "minReadySeconds": 3, "selector"', 1)
    response = send(server, "POST", DEPLOYMENTS, text)
    assert response.status_code == 201
    assert warnings_of(response) == ['299 - "duplicate field \\"spec.minReadySeconds\\""']
    assert stored_spec(server)["minReadySeconds"] == 3


def test_ignore_drops_silently(server: KubeApiServer) -> None:
    response = send(server, "POST", DEPLOYMENTS, with_unknown_fields(), fieldValidation="Ignore")
    assert response.status_code == 201
    assert warnings_of(response) == []
    assert "foo" not in stored_spec(server)


def test_invalid_directive_is_bad_request(server: KubeApiServer) -> None:
    response = send(server, "POST", DEPLOYMENTS, deployment(), fieldValidation="Loud")
    assert response.status_code == 400


def _update(server: KubeApiServer, **query: str) -> requests.Response:
    current = requests.get(server.url + DEPLOYMENTS + "/web", timeout=10).json()
    del current["metadata"]["resourceVersion"]  # unconditional: the rollout's status writes may land in between
    current["spec"]["foo"] = 1
    return send(server, "PUT", DEPLOYMENTS + "/web", current, **query)


WRITES = {
    "update": _update,
    "merge-patch": lambda server, **q: send(
        server, "PATCH", DEPLOYMENTS + "/web", {"spec": {"foo": 1}}, content_type="application/merge-patch+json", **q
    ),
    "json-patch": lambda server, **q: send(
        server,
        "PATCH",
        DEPLOYMENTS + "/web",
        [{"op": "add", "path": "/spec/foo", "value": 1}],
        content_type="application/json-patch+json",
        **q,
    ),
    "strategic-merge-patch": lambda server, **q: send(
        server,
        "PATCH",
        DEPLOYMENTS + "/web",
        {"spec": {"foo": 1}},
        content_type="application/strategic-merge-patch+json",
        **q,
    ),
    "apply": lambda server, **q: send(
        server,
        "PATCH",
        DEPLOYMENTS + "/web",
        yaml.safe_dump({**deployment(), "spec": {**deployment()["spec"], "foo": 1}}),
        content_type="application/apply-patch+yaml",
        fieldManager="test",
        **q,
    ),
}


@pytest.mark.parametrize("write", list(WRITES.values()), ids=list(WRITES))
def test_every_write_verb_warns_by_default_and_fails_under_strict(server: KubeApiServer, write: Any) -> None:
    assert send(server, "POST", DEPLOYMENTS, deployment()).status_code == 201
    strict = write(server, fieldValidation="Strict")
    assert strict.status_code == 400, strict.text
    assert 'strict decoding error: unknown field "spec.foo"' in strict.json()["message"]
    warned = write(server)
    assert warned.status_code == 200, warned.text
    assert warnings_of(warned) == ['299 - "unknown field \\"spec.foo\\""']
    assert "foo" not in stored_spec(server)


def test_custom_resource_unknown_fields_are_pruned_with_a_warning(with_vs_crd: KubeApiServer) -> None:
    body = virtual_service()
    body["spec"]["http"][0]["rout"] = []
    body["metadata"]["colour"] = "blue"
    response = send(with_vs_crd, "POST", VIRTUAL_SERVICES, body)
    assert response.status_code == 201, response.text
    assert warnings_of(response) == [
        '299 - "unknown field \\"metadata.colour\\""',
        '299 - "unknown field \\"spec.http[0].rout\\""',
    ]
    [stored] = with_vs_crd.objects("virtualservices")
    assert "rout" not in stored["spec"]["http"][0] and "colour" not in stored["metadata"]


def _widget_crd() -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "size": {"type": "integer"},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}],
        },
    }


def test_preserve_unknown_fields_keeps_what_the_schema_does_not_declare(server: KubeApiServer) -> None:
    server.apply_crd(_widget_crd())
    body = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1, "colour": "red", "extra": {"anything": {"goes": True}}},
    }
    path = "/apis/example.com/v1/namespaces/default/widgets"
    strict = send(server, "POST", path, body, fieldValidation="Strict")
    assert strict.status_code == 400
    assert strict.json()["message"].endswith('strict decoding error: unknown field "spec.colour"')
    response = send(server, "POST", path, body)
    assert response.status_code == 201, response.text
    assert warnings_of(response) == ['299 - "unknown field \\"spec.colour\\""']
    assert response.json()["spec"] == {"size": 1, "extra": {"anything": {"goes": True}}}
