"""Every kustomization under ``manifests/`` renders, and every object it renders is valid.

Built-in kinds validate against Kubernetes' own OpenAPI schema (kubernetes-validate, strict: an
unknown field is an error, as with ``kubectl apply --validate=strict``) for the oldest and the
newest Kubernetes minor we support; Istio kinds against Istio's CRDs in ``../shared``; Prometheus
Operator kinds, whose CRDs are not vendored here, get a structural check (their rules and
dashboards are checked against the code in test_monitoring.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from istio_schema import istio_errors

KUBERNETES_VERSIONS = ("1.29", "1.33", "1.37")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
ISTIO_GROUPS = ("networking.istio.io/", "security.istio.io/")
PROMETHEUS_OPERATOR = "monitoring.coreos.com/v1"
CONTROLLER_BASES = ("replicator", "service-router")

Render = Callable[[str], list[dict[str, Any]]]


def _is_builtin(obj: dict[str, Any]) -> bool:
    return not obj["apiVersion"].startswith((*ISTIO_GROUPS, PROMETHEUS_OPERATOR))


def _label(obj: dict[str, Any]) -> str:
    return f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def _identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def test_the_kustomizations_users_apply_are_all_found(kustomizations: list[str]) -> None:
    expected = {
        ".",
        "replicator",
        "service-router",
        "monitoring",
        "monitoring/grafana",
        "examples",
        "overlays/namespaced",
        "overlays/sharded",
        "istio",
        "istio/gateway",
    }
    assert expected <= set(kustomizations)


def test_kustomization_renders_objects(kustomization: str, render: Render) -> None:
    objects = render(kustomization)
    assert objects, f"manifests/{kustomization} renders nothing"
    for obj in objects:
        assert {"apiVersion", "kind", "metadata"} <= obj.keys(), obj
        assert obj["metadata"].get("name"), obj


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_builtin_objects_validate_against_the_kubernetes_schema(
    kustomization: str, version: str, render: Render
) -> None:
    failures = []
    for obj in filter(_is_builtin, render(kustomization)):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{_label(obj)}: {exc.message} at {'/'.join(map(str, exc.path))}")
    assert failures == []


def test_istio_objects_validate_against_istio_crds(kustomization: str, render: Render, shared_dir: Path) -> None:
    failures = [
        f"{_label(obj)}: {error}"
        for obj in render(kustomization)
        if obj["apiVersion"].startswith(ISTIO_GROUPS)
        for error in istio_errors(obj, shared_dir)
    ]
    assert failures == []


def test_prometheus_operator_objects_are_well_formed(kustomization: str, render: Render) -> None:
    """No CRD schema here: check the shape the operator needs (the content is in test_monitoring)."""
    for obj in render(kustomization):
        if obj["apiVersion"] != PROMETHEUS_OPERATOR:
            continue
        assert obj["kind"] in {"ServiceMonitor", "PrometheusRule"}, _label(obj)
        assert obj["metadata"].get("namespace"), _label(obj)
        spec = obj["spec"]
        if obj["kind"] == "ServiceMonitor":
            assert spec["selector"]["matchLabels"], _label(obj)
            assert spec["endpoints"] and all(e.get("port") for e in spec["endpoints"]), _label(obj)
        else:
            assert spec["groups"], _label(obj)
            for group in spec["groups"]:
                assert group["name"] and group["rules"], _label(obj)
                for rule in group["rules"]:
                    assert rule.get("alert") or rule.get("record"), rule
                    assert str(rule.get("expr", "")).strip(), rule


def test_namespaced_objects_name_their_namespace(kustomization: str, render: Render) -> None:
    """Nothing lands in whatever namespace the user's kubectl context happens to point at."""
    floating = [
        _label(obj)
        for obj in render(kustomization)
        if obj["kind"] not in CLUSTER_SCOPED and not obj["metadata"].get("namespace")
    ]
    assert floating == []


def test_no_two_objects_share_an_identity(kustomization: str, render: Render) -> None:
    identities = [_identity(obj) for obj in render(kustomization)]
    assert len(identities) == len(set(identities))


def test_the_top_level_composes_both_controllers_the_envoyfilter_and_monitoring(render: Render) -> None:
    parts = {_identity(o) for base in (*CONTROLLER_BASES, "istio", "monitoring") for o in render(base)}
    assert {_identity(o) for o in render(".")} == parts


@pytest.mark.parametrize("base", CONTROLLER_BASES)
def test_each_controller_base_stands_alone_in_its_own_namespace(base: str, render: Render) -> None:
    """Deployed, scaled, upgraded and deleted on its own: nothing in it belongs to the other."""
    objects = render(base)
    namespace = f"{base}-system"
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"] == [namespace]
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] not in CLUSTER_SCOPED} == {namespace}
    other = next(b for b in CONTROLLER_BASES if b != base)
    assert all(not o["metadata"]["name"].startswith(other) for o in objects)
