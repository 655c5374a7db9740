"""The plan: creates, updates only on a change we own, prunes only our clones, never overwrites others."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from controller_common import contract
from replicator.desired import desired_clones
from replicator.origin_config import parse_origin_config
from replicator.plan import Conflict, is_managed_clone, object_key, origin_name_of, plan, stamped
from replicator.pull_request import PullRequest

Origin = Callable[..., dict[str, Any]]
Obj = dict[str, Any]


def pr(number: int, sha: str = "a" * 40) -> PullRequest:
    return PullRequest(number=number, head_sha=sha, head_ref="feature", base_ref="main")


def desired(origin: Obj, services: list[Obj], prs: list[PullRequest], **annotations: str) -> list[Obj]:
    origin["metadata"]["annotations"].update(annotations)
    clones = desired_clones(origin, services, prs, parse_origin_config(origin))
    return [o for c in clones for o in (c.deployment, *c.services)]


def server_defaulted(obj: Obj, rv: int = 500) -> Obj:
    """What the API server returns after creating ``obj``: defaults, allocations, status, metadata."""
    stored = stamped(obj)
    meta = stored["metadata"]
    meta.update(
        uid=f"uid-{meta['name']}",
        resourceVersion=str(rv),
        generation=1,
        creationTimestamp="2026-01-01T00:00:00Z",
        managedFields=[{"manager": "replicator"}],
    )
    spec = stored["spec"]
    if stored["kind"] == "Deployment":
        meta["annotations"]["deployment.kubernetes.io/revision"] = "1"
        spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}})
        spec.setdefault("progressDeadlineSeconds", 600)
        pod = spec["template"]["spec"]
        pod.setdefault("restartPolicy", "Always")
        pod.setdefault("dnsPolicy", "ClusterFirst")
        for container in pod["containers"]:
            container.setdefault("imagePullPolicy", "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("resources", {})
        stored["status"] = {"observedGeneration": 1, "replicas": 1}
    else:
        if spec.get("clusterIP") != "None":
            spec["clusterIP"] = "10.96.1.2"
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports", []):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port["port"])
        stored["status"] = {"loadBalancer": {}}
    # Reorder keys: JSON from the server need not preserve ours.
    return dict(reversed(list(stored.items())))


def test_nothing_exists_everything_is_created_deployments_first(origin: Origin, services: list[Obj]) -> None:
    want = desired(origin(), services, [pr(1)])
    result = plan(want, [], origin_name="echo")
    assert [o["kind"] for o in result.creates] == ["Deployment"] + ["Service"] * 5
    assert all(contract.CLONE_SPEC_HASH_ANNOTATION in o["metadata"]["annotations"] for o in result.creates)
    assert not (result.updates or result.deletes or result.conflicts)


def test_steady_state_is_an_empty_plan(origin: Origin, services: list[Obj]) -> None:
    want = desired(origin(), services, [pr(1), pr(2)])
    existing = [server_defaulted(o) for o in want] + services + [origin()]
    result = plan(want, existing, origin_name="echo")
    assert result.is_empty and not result.conflicts and not result.pending


@pytest.mark.parametrize(
    ("change", "kinds"),
    [
        (lambda d, s: (d, s, [pr(1, sha="b" * 40)], {}), ["Deployment"]),
        (lambda d, s: (d, s, [pr(1)], {contract.REPLICAS_ANNOTATION: "2"}), ["Deployment"]),
        (lambda d, s: (d, s, [pr(1)], {contract.ENV_ANNOTATION: "X=1"}), ["Deployment"]),
        (
            lambda d, s: (d, [s[0] | {"spec": s[0]["spec"] | {"ports": [{"port": 81}]}}], [pr(1)], {}),
            ["Service"],
        ),
    ],
    ids=["head-moved", "replicas-changed", "env-added", "service-port-changed"],
)
def test_a_change_of_intent_is_an_update_carrying_the_resource_version(
    origin: Origin, services: list[Obj], change: Callable[..., Any], kinds: list[str]
) -> None:
    before = desired(origin(), services[:1], [pr(1)])
    existing = [server_defaulted(o, rv=700 + i) for i, o in enumerate(before)]
    deployment, svcs, prs, annotations = change(origin(), services[:1])
    after = desired(deployment, svcs, prs, **annotations)
    result = plan(after, existing, origin_name="echo")
    assert [o["kind"] for o in result.updates] == kinds
    by_key = {object_key(o): o for o in existing}
    for update in result.updates:
        assert update["metadata"]["resourceVersion"] == by_key[object_key(update)]["metadata"]["resourceVersion"]
        if update["kind"] == "Service":
            assert update["spec"]["clusterIP"] == "10.96.1.2"  # allocated address carried over on PUT
    assert not (result.creates or result.deletes)


@pytest.mark.parametrize(
    "drift",
    [
        lambda o: o["spec"].update(replicas=5),
        lambda o: o["metadata"]["labels"].pop(contract.PULL_REQUEST_LABEL),
        lambda o: o["metadata"]["annotations"].update({contract.CLONE_HEAD_SHA_ANNOTATION: "x"}),
        lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="evil:1"),
        lambda o: o["metadata"]["annotations"].pop(contract.CLONE_SPEC_HASH_ANNOTATION),
        lambda o: o["metadata"].pop("ownerReferences"),
    ],
    ids=[
        "scaled-by-hand",
        "our-label-removed",
        "our-annotation-edited",
        "image-edited",
        "hash-removed",
        "owner-removed",
    ],
)
def test_drift_in_a_field_we_own_is_reverted(origin: Origin, services: list[Obj], drift: Callable[[Obj], Any]) -> None:
    want = desired(origin(), [], [pr(1)])
    existing = server_defaulted(want[0])
    drift(existing)
    assert [o["metadata"]["name"] for o in plan(want, [existing], origin_name="echo").updates] == ["echo-pr1"]


def test_drift_in_a_field_we_do_not_own_is_left_alone(origin: Origin) -> None:
    want = desired(origin(), [], [pr(1)])
    existing = server_defaulted(want[0])
    existing["metadata"]["labels"]["added-by-someone"] = "x"
    existing["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "now"
    assert plan(want, [existing], origin_name="echo").is_empty


def test_only_our_clones_of_this_origin_are_pruned(origin: Origin, services: list[Obj]) -> None:
    ours = [server_defaulted(o) for o in desired(origin(), services[:1], [pr(1), pr(2)])]
    other_origin = copy.deepcopy(ours[0])
    other_origin["metadata"].update(name="cart-pr2")
    other_origin["metadata"]["labels"][contract.ORIGIN_LABEL] = "cart"
    terminating = copy.deepcopy(ours[1]) | {}
    terminating["metadata"] = terminating["metadata"] | {"name": "echo-old-pr9", "deletionTimestamp": "now"}
    want = desired(origin(), services[:1], [pr(1)])
    result = plan(want, [*ours, other_origin, terminating, *services, origin()], origin_name="echo")
    assert [(o["kind"], o["metadata"]["name"]) for o in result.deletes] == [
        ("Service", "echo-pr2"),
        ("Deployment", "echo-pr2"),
    ]
    assert not (result.creates or result.updates or result.conflicts)


def test_closing_every_pr_prunes_everything(origin: Origin, services: list[Obj]) -> None:
    ours = [server_defaulted(o) for o in desired(origin(), services, [pr(1)])]
    assert len(plan([], ours, origin_name="echo").deletes) == len(ours)


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ({}, "not managed by the replicator"),
        ({contract.MANAGED_BY_LABEL: "Helm"}, "not managed by the replicator"),
        ({contract.MANAGED_BY_LABEL: contract.REPLICATOR_MANAGER, contract.ORIGIN_LABEL: "cart"}, "origin 'cart'"),
    ],
    ids=["unlabelled", "someone-else", "other-origin"],
)
def test_a_taken_name_is_a_conflict_never_overwritten(origin: Origin, labels: dict[str, str], reason: str) -> None:
    want = desired(origin(), [], [pr(1)])
    squatter = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "echo-pr1", "namespace": "shop", "labels": labels},
    }
    result = plan(want, [squatter], origin_name="echo")
    assert result.conflicts == (Conflict(("Deployment", "shop", "echo-pr1"), result.conflicts[0].reason),)
    assert reason in result.conflicts[0].reason
    assert result.is_empty


def test_a_clone_still_being_deleted_is_pending_not_recreated(origin: Origin) -> None:
    want = desired(origin(), [], [pr(1)])
    existing = server_defaulted(want[0])
    existing["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    result = plan(want, [existing], origin_name="echo")
    assert result.is_empty and result.pending == (("Deployment", "shop", "echo-pr1"),)


@pytest.mark.parametrize(
    ("labels", "origin_name", "expected"),
    [
        ({contract.MANAGED_BY_LABEL: "replicator", contract.ORIGIN_LABEL: "echo"}, "echo", True),
        ({contract.MANAGED_BY_LABEL: "replicator", contract.ORIGIN_LABEL: "echo"}, "cart", False),
        ({contract.ORIGIN_LABEL: "echo"}, "echo", False),
        (
            {contract.MANAGED_BY_LABEL: "replicator", contract.ORIGIN_LABEL: contract.label_value("x" * 80)},
            "x" * 80,
            True,
        ),
    ],
    ids=["ours", "other-origin", "not-managed", "long-origin-name"],
)
def test_is_managed_clone(labels: dict[str, str], origin_name: str, expected: bool) -> None:
    assert is_managed_clone({"metadata": {"labels": labels}}, origin_name) is expected


def test_objects_without_kind_are_refused() -> None:
    with pytest.raises(ValueError, match="has no kind"):
        object_key({"metadata": {"name": "x"}})


def test_long_origin_names_are_told_apart_by_the_origin_annotation(origin: Origin) -> None:
    """Two origins whose hashed origin labels collide can still not prune each other's clones."""
    long_name = "o" * 80
    deployment = origin()
    deployment["metadata"]["name"] = long_name
    clone = server_defaulted(desired(deployment, [], [pr(1)])[0])
    assert origin_name_of(clone) == long_name
    assert is_managed_clone(clone, long_name)
    impostor = copy.deepcopy(clone)
    impostor["metadata"]["annotations"][contract.CLONE_ORIGIN_ANNOTATION] = "someone-else"
    assert not is_managed_clone(impostor, long_name)
    assert plan([], [impostor], origin_name=long_name).deletes == ()


@pytest.mark.parametrize(
    ("labels", "annotations", "expected"),
    [
        ({contract.MANAGED_BY_LABEL: "replicator", contract.ORIGIN_LABEL: "echo"}, {}, "echo"),
        (
            {contract.MANAGED_BY_LABEL: "replicator", contract.ORIGIN_LABEL: "hashed-1234"},
            {contract.CLONE_ORIGIN_ANNOTATION: "the-full-name"},
            "the-full-name",
        ),
        ({contract.ORIGIN_LABEL: "echo"}, {contract.CLONE_ORIGIN_ANNOTATION: "echo"}, None),
        ({contract.MANAGED_BY_LABEL: "replicator"}, {}, None),
    ],
    ids=["label-fallback", "annotation-wins", "not-ours", "no-origin"],
)
def test_origin_name_of(labels: dict[str, str], annotations: dict[str, str], expected: str | None) -> None:
    assert origin_name_of({"metadata": {"labels": labels, "annotations": annotations}}) == expected


def test_an_update_keeps_what_other_controllers_added(origin: Origin, services: list[Obj]) -> None:
    before = desired(origin(), services[:1], [pr(1)])
    existing = [server_defaulted(o) for o in before]
    service = next(o for o in existing if o["kind"] == "Service")
    service["metadata"]["finalizers"] = [contract.ROUTER_FINALIZER]
    service["metadata"]["annotations"]["router.example/note"] = "routed"
    service["metadata"]["labels"][contract.PULL_REQUEST_LABEL] = "999"  # drift in a label we own
    update = plan(before, existing, origin_name="echo").updates[0]
    assert update["metadata"]["finalizers"] == [contract.ROUTER_FINALIZER]
    assert update["metadata"]["annotations"]["router.example/note"] == "routed"
    assert update["metadata"]["labels"][contract.PULL_REQUEST_LABEL] == "1"
    assert update["spec"]["clusterIP"] == "10.96.1.2"
