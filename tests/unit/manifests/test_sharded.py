"""The sharded install (``manifests/overlays/sharded``): every controller runs as shards 0..N-1,
each a Deployment of a leader and a standby on its own Lease, with the base's hardening and RBAC;
only the Lease Role names every shard's Lease."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import replicator.settings
import service_router.settings
from controller_common import contract
from controller_common.flags import ProcessSettings

Render = Callable[[str], list[dict[str, Any]]]
CONTROLLERS = ("replicator", "service-router")
OVERLAY = "overlays/sharded"
INSTANCE = "app.kubernetes.io/instance"


def _deployments(objects: list[dict[str, Any]], controller: str) -> list[dict[str, Any]]:
    """The controller's shards: Deployments named ``<controller>-shard-<index>``."""
    return [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].rpartition("-shard-")[0] == controller
    ]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _process(controller: str, args: list[str], tmp_path: Path) -> ProcessSettings:
    """The controller's own parser over the Deployment's args (the Secret's files stood in for)."""
    (tmp_path / "token").write_text("t\n")
    (tmp_path / "webhook-secret").write_text("s\n")
    argv = [a.replace("/var/run/secrets/replicator/github", str(tmp_path)) for a in args]
    env = {"POD_NAMESPACE": f"{controller}-system", "POD_NAME": f"{controller}-5d8f7c9b6-x7k2q"}
    if controller == "replicator":
        return replicator.settings.parse_settings(argv, environ=env).process
    return service_router.settings.parse_settings(argv, environ=env).process


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_each_shard_is_a_deployment_of_a_leader_and_a_standby_on_its_own_lease(
    controller: str, render: Render, tmp_path: Path
) -> None:
    deployments = _deployments(render(OVERLAY), controller)
    assert sorted(d["metadata"]["name"] for d in deployments) == [f"{controller}-shard-0", f"{controller}-shard-1"]
    processes = [_process(controller, _container(d)["args"], tmp_path) for d in deployments]
    assert sorted((p.shard.index, p.shard.count) for p in processes) == [(0, 2), (1, 2)]
    leases = sorted(p.leader_election.lease_name for p in processes if p.leader_election is not None)
    assert leases == [f"{controller}-shard-0", f"{controller}-shard-1"]
    assert all(d["spec"]["replicas"] == 2 for d in deployments)


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_each_shard_selects_only_its_own_pods(controller: str, render: Render) -> None:
    deployments = _deployments(render(OVERLAY), controller)
    for deployment in deployments:
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector[INSTANCE] == deployment["metadata"]["name"]
        for other in deployments:
            labels = other["spec"]["template"]["metadata"]["labels"]
            assert (selector.items() <= labels.items()) == (other is deployment)


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_a_shard_is_the_base_deployment_but_for_its_name_pods_and_shard_flags(controller: str, render: Render) -> None:
    (base,) = [o for o in render(controller) if o["kind"] == "Deployment"]
    for deployment in _deployments(render(OVERLAY), controller):
        shard = copy.deepcopy(deployment)
        name = shard["metadata"].pop("name")
        base_copy = copy.deepcopy(base)
        base_copy["metadata"].pop("name")
        assert shard["spec"]["selector"]["matchLabels"].pop(INSTANCE) == name
        assert shard["spec"]["template"]["metadata"]["labels"].pop(INSTANCE) == name
        args = _container(shard)["args"]
        assert args[-2:] == ["--shard-count=2", f"--shard-index={name[-1]}"]
        del args[-2:]
        assert shard == base_copy


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_rbac_is_the_bases_but_the_lease_role_names_every_shards_lease(controller: str, render: Render) -> None:
    sharded = render(OVERLAY)
    lease_role = f"{controller}-leader-election"
    for obj in render(controller):
        if obj["kind"] in ("Deployment",) or (obj["kind"] == "Role" and obj["metadata"]["name"] == lease_role):
            continue
        assert obj in sharded, f"{obj['kind']} {obj['metadata']['name']} differs from the base"
    (role,) = [o for o in sharded if o["kind"] == "Role" and o["metadata"]["name"] == lease_role]
    (binding,) = [o for o in sharded if o["kind"] == "RoleBinding" and o["roleRef"]["name"] == lease_role]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == f"{controller}-system"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": controller, "namespace": f"{controller}-system"}]
    by_name = sorted((tuple(r.get("resourceNames", ())), tuple(r["verbs"])) for r in role["rules"])
    assert by_name == [((), ("create",)), ((f"{controller}-shard-0", f"{controller}-shard-1"), ("get", "update"))]
    assert all(r["resources"] == ["leases"] and r["apiGroups"] == ["coordination.k8s.io"] for r in role["rules"])


def test_every_shards_replicator_leader_is_a_webhook_receiver(render: Render) -> None:
    objects = render(OVERLAY)
    (service,) = [o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "replicator-webhook"]
    selector = dict(service["spec"]["selector"])
    assert selector.pop(contract.WEBHOOK_RECEIVER_LABEL) == "true"
    for deployment in _deployments(objects, "replicator"):
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
