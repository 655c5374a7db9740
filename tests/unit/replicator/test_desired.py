"""Clone objects: valid, stripped of what the server owns, and isolated from every origin Service."""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest

from controller_common import contract
from controller_common.objects import selector_matches_labels
from replicator.desired import (
    clone_deployment,
    clone_services,
    deployed_pull_requests,
    desired_clones,
)
from replicator.isolation import (
    CloneError,
    clone_pod_labels,
    label_selector_matches,
    origin_services,
    rewritten_keys,
)
from replicator.origin_config import OriginConfig, is_opted_in, parse_origin_config
from replicator.pull_request import PullRequest

Origin = Callable[..., dict[str, Any]]
SHA = "0123456789abcdef0123456789abcdef01234567"


def pr(number: int = 42, sha: str = SHA, ref: str = "feature/Fancy thing") -> PullRequest:
    return PullRequest(number=number, head_sha=sha, head_ref=ref, base_ref="main")


DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?")


def assert_valid(obj: dict[str, Any]) -> None:
    """What kube-apiserver checks beyond the OpenAPI schema: names and label values."""
    kubernetes_validate.validate(obj, "1.33", strict=True)
    name = obj["metadata"]["name"]
    assert (DNS1035_LABEL if obj["kind"] == "Service" else DNS1123_SUBDOMAIN).fullmatch(name), name
    assert len(name) <= 63  # also for Deployments: the name is the clone label's value
    label_sets = [obj["metadata"]["labels"]]
    if obj["kind"] == "Deployment":
        label_sets += [obj["spec"]["template"]["metadata"]["labels"], obj["spec"]["selector"]["matchLabels"]]
    else:
        label_sets.append(obj["spec"]["selector"])
    for labels in label_sets:
        for value in labels.values():
            assert LABEL_VALUE.fullmatch(value), value


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def test_origin_services_are_those_selecting_its_pods(origin: Origin, services: list[dict[str, Any]]) -> None:
    names = [s["metadata"]["name"] for s in origin_services(origin(), services)]
    assert names == ["echo", "echo-by-team", "echo-headless", "echo-nodeport", "echo-public"]


@pytest.mark.parametrize("number", [1, 42, 99999], ids=["pr1", "pr42", "pr99999"])
def test_no_origin_service_selects_a_clone_pod_and_each_clone_service_only_its_clone(
    origin: Origin, services: list[dict[str, Any]], number: int
) -> None:
    """Over every Service in the namespace, with two clones side by side."""
    config = parse_origin_config(origin())
    clones = desired_clones(origin(), services, [pr(number), pr(number + 1)], config)
    clone_pods = {c.deployment["metadata"]["name"]: pod_labels(c.deployment) for c in clones}
    origin_pods = pod_labels(origin())
    for service in services:
        assert not any(
            selector_matches_labels(service["spec"].get("selector"), labels) for labels in clone_pods.values()
        ), service["metadata"]["name"]
    for clone in clones:
        for service in clone.services:
            matched = [
                name
                for name, labels in clone_pods.items()
                if selector_matches_labels(service["spec"]["selector"], labels)
            ]
            assert matched == [clone.deployment["metadata"]["name"]]
            assert not selector_matches_labels(service["spec"]["selector"], origin_pods)
        deployment_selector = clone.deployment["spec"]["selector"]["matchLabels"]
        assert selector_matches_labels(deployment_selector, pod_labels(clone.deployment))
        assert not selector_matches_labels(deployment_selector, origin_pods)


def test_label_rewrite_rule(origin: Origin, services: list[dict[str, Any]]) -> None:
    """Selected keys get -pr<N>, version becomes pr-<N>, other labels (for mesh policies) are kept."""
    labels = clone_pod_labels(origin(), services, 7)
    assert labels == {
        "app": "echo-pr7",
        "tier": "web-pr7",
        "team": "payments-pr7",
        "version": "pr-7",
        contract.ORIGIN_LABEL: "echo",
        contract.PULL_REQUEST_LABEL: "7",
        contract.CLONE_LABEL: "echo-pr7",
    }
    only_app = clone_pod_labels(origin(), [services[0] | {"spec": {"selector": {"app": "echo"}}}], 7)
    assert (only_app["app"], only_app["tier"], only_app["team"]) == ("echo-pr7", "web", "payments")


def test_a_service_selecting_labels_we_set_is_refused(origin: Origin) -> None:
    sneaky = {"kind": "Service", "metadata": {"name": "v"}, "spec": {"selector": {"version": "pr-3"}}}
    with pytest.raises(CloneError, match="Service v would select the pods of clone echo-pr3"):
        clone_pod_labels(origin(), [sneaky], 3)


def test_long_label_values_stay_valid(origin: Origin) -> None:
    deployment = origin()
    deployment["spec"]["template"]["metadata"]["labels"]["app"] = "a" * 63
    svc = {"kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": {"app": "a" * 63}}}
    labels = clone_pod_labels(deployment, [svc], 123)
    assert len(labels["app"]) <= 63 and labels["app"] != "a" * 63 and labels["app"].endswith("-pr123")


def test_clone_deployment_strips_server_fields_and_sets_ours(origin: Origin, services: list[dict[str, Any]]) -> None:
    config = parse_origin_config(origin(**{contract.ENV_ANNOTATION: "QUEUE_ENABLED=false"}))
    clone = clone_deployment(origin(), pr(), config, services=services)
    meta = clone["metadata"]
    assert set(meta) == {"name", "namespace", "labels", "annotations", "ownerReferences"}
    assert meta["name"] == "echo-pr42" and meta["namespace"] == "shop"
    assert "status" not in clone
    assert meta["labels"] == {
        "app": "echo",
        "team": "payments",
        contract.MANAGED_BY_LABEL: contract.REPLICATOR_MANAGER,
        contract.ORIGIN_LABEL: "echo",
        contract.PULL_REQUEST_LABEL: "42",
        contract.CLONE_LABEL: "echo-pr42",
    }
    assert meta["annotations"] == {
        "team.example.com/owner": "payments",
        contract.CLONE_REPOSITORY_ANNOTATION: "https://github.com/org/repo",
        contract.CLONE_HEAD_SHA_ANNOTATION: SHA,
        contract.CLONE_ORIGIN_ANNOTATION: "echo",
    }
    assert not is_opted_in(clone)
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "echo",
            "uid": origin()["metadata"]["uid"],
            "controller": False,
            "blockOwnerDeletion": False,
        }
    ]
    spec = clone["spec"]
    assert spec["replicas"] == 1 and "paused" not in spec
    assert "creationTimestamp" not in spec["template"]["metadata"]
    assert spec["template"]["metadata"]["annotations"] == {"sidecar.istio.io/inject": "true"}
    app, worker, proxy = spec["template"]["spec"]["containers"]
    assert app["image"] == worker["image"] == "registry.example.com:5000/shop/echo:pr-42"
    assert app["imagePullPolicy"] == "Always"  # pr-42 is a mutable tag
    assert proxy == origin()["spec"]["template"]["spec"]["containers"][2]
    assert app["env"] == [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "PR_BRANCH", "value": "feature/Fancy thing"},
        {"name": "PR_NUMBER", "value": "42"},
        {"name": "PR_HEAD_SHA", "value": SHA},
        {"name": "QUEUE_ENABLED", "value": "false"},
    ]
    assert [e["name"] for e in worker["env"]] == ["PR_NUMBER", "PR_HEAD_SHA", "PR_BRANCH", "QUEUE_ENABLED"]


@pytest.mark.parametrize(
    ("annotations", "replicas", "images", "pull_policy"),
    [
        ({contract.REPLICAS_ANNOTATION: "3"}, 3, ("registry.example.com:5000/shop/echo:pr-42",) * 2, "Always"),
        (
            {contract.IMAGE_TEMPLATE_ANNOTATION: "{image}:{short_sha}", contract.CONTAINERS_ANNOTATION: "app"},
            1,
            ("registry.example.com:5000/shop/echo:0123456", "registry.example.com:5000/shop/echo:1.4.2"),
            None,
        ),
    ],
    ids=["replicas-from-config", "pinned-template-one-container"],
)
def test_clone_deployment_follows_config(
    origin: Origin, annotations: dict[str, str], replicas: int, images: tuple[str, ...], pull_policy: str | None
) -> None:
    clone = clone_deployment(origin(), pr(), parse_origin_config(origin(**annotations)))
    containers = clone["spec"]["template"]["spec"]["containers"]
    assert clone["spec"]["replicas"] == replicas
    assert tuple(c["image"] for c in containers[:2]) == images
    assert containers[0].get("imagePullPolicy") == pull_policy


def test_clone_services_are_cluster_ip_and_stripped(origin: Origin, services: list[dict[str, Any]]) -> None:
    config = parse_origin_config(origin())
    clones = {s["metadata"]["name"]: s for s in clone_services(origin(), services, pr(), config)}
    assert sorted(clones) == [
        "echo-by-team-pr42",
        "echo-headless-pr42",
        "echo-nodeport-pr42",
        "echo-pr42",
        "echo-public-pr42",
    ]
    for name, svc in clones.items():
        meta, spec = svc["metadata"], svc["spec"]
        assert set(meta) == {"name", "namespace", "labels", "annotations", "ownerReferences"}
        assert meta["annotations"] == {
            contract.ORIGIN_SERVICE_ANNOTATION: name.removesuffix("-pr42"),
            contract.CLONE_REPOSITORY_ANNOTATION: "https://github.com/org/repo",
            contract.CLONE_ORIGIN_ANNOTATION: "echo",
            "networking.istio.io/exportTo": ".",
        }
        assert meta["labels"][contract.MANAGED_BY_LABEL] == contract.REPLICATOR_MANAGER
        assert "app.kubernetes.io/instance" not in meta["labels"]
        assert spec["type"] == "ClusterIP" and spec["selector"] == {contract.CLONE_LABEL: "echo-pr42"}
        for key in ("clusterIPs", "externalIPs", "externalTrafficPolicy", "healthCheckNodePort", "loadBalancerIP"):
            assert key not in spec
        assert all("nodePort" not in port for port in spec["ports"])
    assert clones["echo-headless-pr42"]["spec"]["clusterIP"] == "None"
    assert "clusterIP" not in clones["echo-pr42"]["spec"]
    assert clones["echo-public-pr42"]["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 60}}
    assert "sessionAffinityConfig" not in clones["echo-nodeport-pr42"]["spec"]  # affinity None: invalid there


@pytest.mark.parametrize(
    ("uid", "owners"), [(None, ["echo"]), ("uid-clone", ["echo", "echo-pr42"])], ids=["before", "after"]
)
def test_clone_service_owned_by_clone_deployment_once_it_exists(
    origin: Origin, services: list[dict[str, Any]], uid: str | None, owners: list[str]
) -> None:
    config = parse_origin_config(origin())
    svc = clone_services(origin(), services[:1], pr(), config, clone_deployment_uid=uid)[0]
    assert [r["name"] for r in svc["metadata"]["ownerReferences"]] == owners
    via_desired = desired_clones(origin(), services[:1], [pr()], config, clone_uids={"echo-pr42": "uid-clone"})
    assert via_desired[0].services[0]["metadata"]["ownerReferences"][-1]["uid"] == "uid-clone"


@pytest.mark.parametrize(
    ("origin_name", "service_names"),
    [
        ("d" * 70, ["s" * 60 + "-alpha", "s" * 60 + "-beta"]),
        ("d" * 60, ["s" * 59, "s" * 58]),
        ("a.b" + "c" * 100, ["s" * 63]),
    ],
    ids=["long-shared-prefix", "boundary", "dotted-deployment-name"],
)
def test_long_names_are_valid_distinct_and_deterministic(
    origin: Origin, origin_name: str, service_names: list[str]
) -> None:
    deployment = origin()
    deployment["metadata"]["name"] = origin_name
    services = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": n}, "spec": {"selector": {"app": "echo"}}}
        for n in service_names
    ]
    config = parse_origin_config(deployment)
    first = desired_clones(deployment, services, [pr(1), pr(12345)], config)
    again = desired_clones(deployment, services, [pr(1), pr(12345)], config)
    names = [o["metadata"]["name"] for c in first for o in (c.deployment, *c.services)]
    assert names == [o["metadata"]["name"] for c in again for o in (c.deployment, *c.services)]
    assert len(set(names)) == len(names)
    for clone in first:
        for obj in (clone.deployment, *clone.services):
            assert_valid(obj)


def test_every_clone_object_validates_against_kubernetes_schema(origin: Origin, services: list[dict[str, Any]]) -> None:
    config = parse_origin_config(origin(**{contract.ENV_ANNOTATION: '{"A": "1"}'}))
    for clone in desired_clones(origin(), services, [pr(1), pr(20000, ref="x" * 300)], config):
        for obj in (clone.deployment, *clone.services):
            assert_valid(obj)


def test_inputs_are_not_mutated(origin: Origin, services: list[dict[str, Any]]) -> None:
    deployment, before = origin(), origin()
    services_before = copy.deepcopy(services)
    desired_clones(deployment, services, [pr()], parse_origin_config(deployment))
    assert deployment == before and services == services_before


def test_config_without_containers_leaves_images_alone(origin: Origin) -> None:
    config = OriginConfig(repository=parse_origin_config(origin()).repository, containers=())
    clone = clone_deployment(origin(), pr(), config)
    assert clone["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.4.2")


def test_deployed_pull_requests_reads_back_what_we_wrote(origin: Origin, services: list[dict[str, Any]]) -> None:
    config = parse_origin_config(origin())
    ours = [c.deployment for c in desired_clones(origin(), services, [pr(3), pr(4, sha="f" * 40)], config)]
    foreign = copy.deepcopy(ours[0])
    foreign["metadata"]["labels"][contract.ORIGIN_LABEL] = "cart"
    service = clone_services(origin(), services, pr(3), config)[0]
    deployed = deployed_pull_requests([*ours, foreign, service, origin()], "echo")
    assert {n: (p.head_sha, p.head_ref) for n, p in deployed.items()} == {
        3: (SHA, "feature/Fancy thing"),
        4: ("f" * 40, "feature/Fancy thing"),
    }


SELF = {"matchLabels": {"app": "echo"}}
OTHER = {"matchLabels": {"app": "redis"}}
SELF_EXPR = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}
CLONE_SELF = {"matchLabels": {contract.CLONE_LABEL: "echo-pr42"}}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [(SELF, CLONE_SELF), (SELF_EXPR, CLONE_SELF), (OTHER, OTHER), ({}, {})],
    ids=["own-pods-match-labels", "own-pods-match-expressions", "other-workload-kept", "empty-selector-kept"],
)
def test_scheduling_rules_about_own_pods_follow_the_clone(
    origin: Origin, services: list[dict[str, Any]], selector: dict[str, Any], expected: dict[str, Any]
) -> None:
    deployment = origin()
    deployment["spec"]["template"]["spec"]["affinity"] = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": copy.deepcopy(selector), "topologyKey": "kubernetes.io/hostname"}
            ],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "podAffinityTerm": {"labelSelector": copy.deepcopy(selector), "topologyKey": "zone"}}
            ],
        }
    }
    deployment["spec"]["template"]["spec"]["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": copy.deepcopy(selector),
        }
    ]
    clone = clone_deployment(deployment, pr(), parse_origin_config(deployment), services=services)
    pod = clone["spec"]["template"]["spec"]
    anti = pod["affinity"]["podAntiAffinity"]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"] == expected
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["labelSelector"] == expected
    assert pod["topologySpreadConstraints"][0]["labelSelector"] == expected
    assert_valid(clone)


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ({"matchLabels": {"app": "echo"}}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["echo"]}]}, False),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]}, False),
        (None, False),
    ],
    ids=["labels", "not-in", "exists", "does-not-exist", "exists-missing", "in-other", "none"],
)
def test_label_selector_matches(selector: dict[str, Any] | None, matches: bool) -> None:
    assert label_selector_matches(selector, {"app": "echo", "tier": "web"}) is matches


def test_istio_revision_labels_name_the_pull_request(origin: Origin, services: list[dict[str, Any]]) -> None:
    deployment = origin()
    deployment["spec"]["template"]["metadata"]["labels"].update(
        {"service.istio.io/canonical-revision": "v1", "app.kubernetes.io/version": "1.4.2"}
    )
    labels = clone_pod_labels(deployment, services, 5)
    assert labels["service.istio.io/canonical-revision"] == labels["app.kubernetes.io/version"] == "pr-5"
    assert labels["version"] == "pr-5"


def _subsets(labels: dict[str, str]) -> list[dict[str, str]]:
    items = sorted(labels.items())
    return [dict(c) for r in range(1, len(items) + 1) for c in itertools.combinations(items, r)]


@pytest.mark.parametrize(
    "selector",
    _subsets({"app": "echo", "tier": "web", "team": "payments", "version": "v1"}),
    ids=lambda s: "+".join(s),
)
def test_every_possible_origin_service_misses_the_clone(origin: Origin, selector: dict[str, str]) -> None:
    """Whatever subset of the origin's pod labels a Service selects on, it never selects a clone pod."""
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": selector}}
    deployment = origin()
    clone = clone_deployment(deployment, pr(), parse_origin_config(deployment), services=[service])
    assert selector_matches_labels(selector, pod_labels(deployment))
    assert not selector_matches_labels(selector, pod_labels(clone))


def test_our_own_clone_services_do_not_change_the_rewrite(origin: Origin, services: list[dict[str, Any]]) -> None:
    """Idempotence: the clone Services of a previous reconcile are in the namespace next time."""
    config = parse_origin_config(origin())
    first = desired_clones(origin(), services, [pr(1), pr(2)], config)
    with_clones = services + [s for c in first for s in c.services]
    again = desired_clones(origin(), with_clones, [pr(1), pr(2)], config)
    assert again == first


def _svc(selector: dict[str, str], name: str = "s") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"selector": selector}}


@pytest.mark.parametrize(
    ("selectors", "rewritten"),
    [
        ([{"app": "echo", "tier": "web"}], {"tier"}),
        ([{"app": "echo"}], {"app"}),
        ([{"app": "echo", "tier": "web"}, {"app": "echo"}], {"app", "tier"}),
        ([{"app.kubernetes.io/name": "echo", "team": "payments"}], {"team"}),
        ([{"team": "other"}, {"app": "cart"}], set()),
        ([], set()),
    ],
    ids=["app-spared", "app-alone-rewritten", "both-services", "k8s-name-spared", "unrelated-services", "none"],
)
def test_rewritten_keys(origin: Origin, selectors: list[dict[str, str]], rewritten: set[str]) -> None:
    deployment = origin()
    deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "echo"
    services = [_svc(sel, f"s{i}") for i, sel in enumerate(selectors)]
    assert rewritten_keys(deployment, services) == rewritten
    labels = clone_pod_labels(deployment, services, 9)
    origin_labels = pod_labels(deployment)
    changed = {k for k in origin_labels if labels[k] != origin_labels[k]} - {"version"}
    assert changed == rewritten
    assert not any(selector_matches_labels(sel, labels) for sel in selectors)
