"""Server-side apply: create-or-merge, ownership, conflicts and --force-conflicts, pruning."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import yaml

from emulators.kube_api import KubeApiServer
from emulators.kube_api.testing import deployment, virtual_service

DEPLOYMENT = "/apis/apps/v1/namespaces/default/deployments/web"
VS = "/apis/networking.istio.io/v1/namespaces/default/virtualservices/web"


def apply(
    server: KubeApiServer, path: str, body: dict[str, Any], manager: str | None = "tester", force: bool = False
) -> tuple[int, dict[str, Any]]:
    query = "&".join(filter(None, [f"fieldManager={manager}" if manager else "", "force=true" if force else ""]))
    req = urllib.request.Request(
        f"{server.url}{path}?{query}",
        data=yaml.safe_dump(body).encode(),
        method="PATCH",
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def owners(obj: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields", [])}


def test_apply_creates_then_merges(server: KubeApiServer) -> None:
    code, created = apply(server, DEPLOYMENT, deployment())
    assert code == 201 and ("tester", "Apply") in owners(created)
    code, again = apply(server, DEPLOYMENT, deployment())
    assert code == 200 and again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_apply_requires_a_field_manager(server: KubeApiServer) -> None:
    code, body = apply(server, DEPLOYMENT, deployment(), manager=None)
    assert (code, body["reason"]) == (400, "BadRequest")


def test_conflicting_value_of_another_manager_is_409_unless_forced(server: KubeApiServer) -> None:
    apply(server, DEPLOYMENT, deployment(replicas=1), manager="first")
    code, body = apply(server, DEPLOYMENT, deployment(replicas=3), manager="second")
    assert (code, body["reason"]) == (409, "Conflict")
    assert body["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "first" using apps/v1', "field": ".spec.replicas"}
    ]
    code, forced = apply(server, DEPLOYMENT, deployment(replicas=3), manager="second", force=True)
    assert code == 200 and forced["spec"]["replicas"] == 3


def test_same_value_is_shared_ownership_not_a_conflict(server: KubeApiServer) -> None:
    apply(server, DEPLOYMENT, deployment(replicas=2), manager="first")
    code, body = apply(server, DEPLOYMENT, deployment(replicas=2), manager="second")
    assert code == 200 and {("first", "Apply"), ("second", "Apply")} <= owners(body)


def test_fields_dropped_from_the_configuration_are_removed(with_vs_crd: KubeApiServer) -> None:
    with_gateways = virtual_service()
    with_gateways["spec"]["gateways"] = ["mesh"]
    apply(with_vs_crd, VS, with_gateways)
    code, body = apply(with_vs_crd, VS, virtual_service())
    assert code == 200 and "gateways" not in body["spec"]


def test_fields_owned_by_someone_else_are_kept(with_vs_crd: KubeApiServer) -> None:
    with_gateways = virtual_service()
    with_gateways["spec"]["gateways"] = ["mesh"]
    apply(with_vs_crd, VS, with_gateways, manager="first")
    apply(with_vs_crd, VS, with_gateways, manager="second")
    code, body = apply(with_vs_crd, VS, virtual_service(), manager="first")
    assert code == 200 and body["spec"]["gateways"] == ["mesh"]


@pytest.mark.parametrize("missing", ["apiVersion", "kind"])
def test_configuration_needs_api_version_and_kind(server: KubeApiServer, missing: str) -> None:
    body = deployment()
    del body[missing]
    assert apply(server, DEPLOYMENT, body)[0] == 400
