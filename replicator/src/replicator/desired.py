"""The clones an origin should have: one Deployment and its Services per selected pull request.

Pure: the origin Deployment, every Service in its namespace and the pull requests go in; plain
dicts ready to create come out. The guarantees, each enforced here rather than hoped for:

* Nothing the server owns is copied (status, uid, resourceVersion, managedFields, revision
  annotations, the origin's ownerReferences, cluster IPs, node ports, load-balancer fields), and
  no replication opt-in annotation, so a clone is never itself an origin.
* **Isolation** (:mod:`replicator.isolation`): no Service of the namespace selecting the origin
  ever selects a clone pod, and each clone Service selects exactly its clone's pods.
* Scheduling rules that refer to the origin's own pods (pod (anti-)affinity, topology spread)
  are retargeted to the clone's own pods; rules about other workloads are kept as they are.
* Replicas come from the configuration (default 1), never from the origin's (HPA-driven) count.
* Ownership: managed-by/origin/PR/clone labels, origin/repository/head-SHA annotations and an
  ownerReference to the origin (and, once known, from each clone Service to its clone Deployment).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller_common import contract, objects
from replicator.image import is_pinned, render_image
from replicator.isolation import (
    CloneError,
    clone_pod_labels,
    is_replicator_managed,
    origin_services,
    pod_labels,
    retarget_self_selectors,
)
from replicator.origin_config import OriginConfig
from replicator.pull_request import PullRequest

SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "ownerReferences",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "finalizers",
    "generateName",
)
SERVER_ANNOTATIONS = (
    "deployment.kubernetes.io/revision",
    "kubectl.kubernetes.io/last-applied-configuration",
)
FOREIGN_OWNERSHIP_ANNOTATION_PREFIXES = ("argocd.argoproj.io/", "meta.helm.sh/")
"""A GitOps tool that believes it owns a clone would prune it; clones belong to the replicator only."""
FOREIGN_OWNERSHIP_LABELS = ("app.kubernetes.io/instance",)
"""Argo CD's default tracking label, on the clone objects themselves (pod labels are kept)."""
SERVICE_ANNOTATIONS_KEPT = ("networking.istio.io/exportTo",)
"""Origin Service annotations worth copying; the rest (load balancers, external-dns) must not be."""
SERVICE_SPEC_DROPPED = (
    "clusterIPs",
    "externalIPs",
    "externalName",
    "externalTrafficPolicy",
    "healthCheckNodePort",
    "loadBalancerIP",
    "loadBalancerSourceRanges",
    "loadBalancerClass",
    "allocateLoadBalancerNodePorts",
    "ipFamilies",
    "ipFamilyPolicy",
)
CLONE_REVISION_HISTORY_LIMIT = 2
"""Every push rolls a clone; a short history keeps old ReplicaSets from piling up per PR."""


@dataclass(frozen=True)
class CloneSet:
    """Everything one pull request's environment consists of, for one origin."""

    pull_request: PullRequest
    deployment: dict[str, Any]
    services: tuple[dict[str, Any], ...]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _ownership_labels(origin_name: str, pr_number: int, clone: str) -> dict[str, str]:
    return {
        contract.MANAGED_BY_LABEL: contract.REPLICATOR_MANAGER,
        contract.ORIGIN_LABEL: contract.label_value(origin_name),
        contract.PULL_REQUEST_LABEL: str(pr_number),
        contract.CLONE_LABEL: clone,
    }


def _object_labels(source: Mapping[str, Any], ownership: Mapping[str, str]) -> dict[str, str]:
    labels = {k: v for k, v in objects.labels(source).items() if k not in FOREIGN_OWNERSHIP_LABELS}
    labels.update(ownership)
    return labels


def owner_reference(kind: str, name: str, uid: str, api_version: str = "apps/v1") -> dict[str, Any]:
    """A non-controller reference: garbage collection only, no adoption, no blocking deletion."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": False,
        "blockOwnerDeletion": False,
    }


def _origin_reference(origin: Mapping[str, Any]) -> list[dict[str, Any]]:
    uid = _meta(origin).get("uid")
    return [owner_reference("Deployment", str(_meta(origin)["name"]), str(uid))] if uid else []


def _set_env(env: list[dict[str, Any]], values: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Set each name to a literal value: replaced in place (keeps ``$(VAR)`` order), else appended."""
    result = [dict(e) for e in env]
    for name, value in values:
        entry = {"name": name, "value": value}
        for index, existing in enumerate(result):
            if existing.get("name") == name:
                result[index] = entry
                break
        else:
            result.append(entry)
    return result


def clone_deployment(
    origin: Mapping[str, Any],
    pr: PullRequest,
    config: OriginConfig,
    *,
    services: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The clone Deployment for ``pr``. Pass every Service of the namespace: they decide the label rewrite."""
    origin_meta = _meta(origin)
    origin_name = str(origin_meta["name"])
    clone = contract.clone_name(origin_name, pr.number)

    annotations = {
        k: v
        for k, v in (origin_meta.get("annotations") or {}).items()
        if k not in SERVER_ANNOTATIONS
        and not k.startswith(contract.REPLICATION_PREFIX)
        and not k.startswith(FOREIGN_OWNERSHIP_ANNOTATION_PREFIXES)
    }
    annotations[contract.CLONE_REPOSITORY_ANNOTATION] = config.repository.html_url
    annotations[contract.CLONE_HEAD_SHA_ANNOTATION] = pr.head_sha
    annotations[contract.CLONE_ORIGIN_ANNOTATION] = origin_name
    metadata: dict[str, Any] = {
        "name": clone,
        "labels": _object_labels(origin, _ownership_labels(origin_name, pr.number, clone)),
        "annotations": annotations,
    }
    if origin_meta.get("namespace"):
        metadata["namespace"] = origin_meta["namespace"]
    references = _origin_reference(origin)
    if references:
        metadata["ownerReferences"] = references

    spec = copy.deepcopy(dict(origin.get("spec") or {}))
    spec.pop("paused", None)
    spec["replicas"] = config.replicas
    spec["revisionHistoryLimit"] = CLONE_REVISION_HISTORY_LIMIT
    spec["selector"] = {"matchLabels": {contract.CLONE_LABEL: clone}}
    template = spec.setdefault("template", {})
    template_meta = template.setdefault("metadata", {})
    template_meta.pop("creationTimestamp", None)
    template_meta["labels"] = clone_pod_labels(origin, services, pr.number)
    pod_spec = template.setdefault("spec", {})
    retarget_self_selectors(pod_spec, pod_labels(origin), clone)

    pull_always = not is_pinned(config.image_template)
    extra_env = (
        ("PR_NUMBER", str(pr.number)),
        ("PR_HEAD_SHA", pr.head_sha),
        ("PR_BRANCH", pr.head_ref),
        *config.env,
    )
    for container in pod_spec.get("containers") or []:
        if container.get("name") not in config.containers:
            continue
        try:
            container["image"] = render_image(config.image_template, origin_image=str(container.get("image")), pr=pr)
        except ValueError as exc:
            raise CloneError(f"container {container.get('name')}: {exc}") from None
        if pull_always:
            # A mutable tag such as pr-<N> is reused by every push: make the node pull it again.
            container["imagePullPolicy"] = "Always"
        container["env"] = _set_env(container.get("env") or [], extra_env)

    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def clone_services(
    origin: Mapping[str, Any],
    services: Iterable[Mapping[str, Any]],
    pr: PullRequest,
    config: OriginConfig,
    *,
    clone_deployment_uid: str | None = None,
) -> list[dict[str, Any]]:
    """One ClusterIP clone per Service selecting the origin's pods, selecting only the clone's pods."""
    origin_name = str(_meta(origin)["name"])
    clone = contract.clone_name(origin_name, pr.number)
    clones: list[dict[str, Any]] = []
    for service in origin_services(origin, services):
        service_meta = _meta(service)
        service_name = str(service_meta["name"])
        annotations = {
            k: v for k, v in (service_meta.get("annotations") or {}).items() if k in SERVICE_ANNOTATIONS_KEPT
        }
        annotations[contract.ORIGIN_SERVICE_ANNOTATION] = service_name
        annotations[contract.CLONE_REPOSITORY_ANNOTATION] = config.repository.html_url
        annotations[contract.CLONE_ORIGIN_ANNOTATION] = origin_name
        metadata: dict[str, Any] = {
            "name": contract.clone_name(service_name, pr.number),
            "labels": _object_labels(service, _ownership_labels(origin_name, pr.number, clone)),
            "annotations": annotations,
        }
        if _meta(origin).get("namespace"):
            metadata["namespace"] = _meta(origin)["namespace"]
        references = _origin_reference(origin)
        if clone_deployment_uid:
            references.append(owner_reference("Deployment", clone, clone_deployment_uid))
        if references:
            metadata["ownerReferences"] = references

        spec = copy.deepcopy(dict(service.get("spec") or {}))
        for key in SERVICE_SPEC_DROPPED:
            spec.pop(key, None)
        if spec.get("clusterIP") != "None":
            # Headless stays headless (a user choice); any allocated address is the server's.
            spec.pop("clusterIP", None)
        if spec.get("sessionAffinity") != "ClientIP":
            spec.pop("sessionAffinityConfig", None)
        spec["type"] = "ClusterIP"
        spec["selector"] = {contract.CLONE_LABEL: clone}
        spec["ports"] = [{k: v for k, v in port.items() if k != "nodePort"} for port in spec.get("ports") or []]
        if not spec["ports"]:
            spec.pop("ports")
        clones.append({"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec})
    return clones


def desired_clones(
    origin: Mapping[str, Any],
    services: Sequence[Mapping[str, Any]],
    prs: Iterable[PullRequest],
    config: OriginConfig,
    *,
    clone_uids: Mapping[str, str] | None = None,
) -> list[CloneSet]:
    """One :class:`CloneSet` per pull request (already selected by policy), in PR order.

    ``clone_uids`` maps existing clone Deployment names to their uids, so clone Services get an
    ownerReference to their clone Deployment once it exists (the next reconcile after creation).
    Raises :class:`CloneError` when the origin cannot be cloned safely; the caller must then
    leave existing clones alone rather than plan against an empty desired state.

    Our own clone Services are set aside first: they select only their clone's label, so they
    change nothing here, and scanning them for every PR made a reconcile grow with PRs squared.
    """
    services = [s for s in services if not is_replicator_managed(s)]
    return [
        CloneSet(
            pull_request=pr,
            deployment=clone_deployment(origin, pr, config, services=services),
            services=tuple(
                clone_services(
                    origin,
                    services,
                    pr,
                    config,
                    clone_deployment_uid=(clone_uids or {}).get(
                        contract.clone_name(str(_meta(origin)["name"]), pr.number)
                    ),
                )
            ),
        )
        for pr in sorted(prs, key=lambda p: p.number)
    ]


def _env_value(deployment: Mapping[str, Any], name: str) -> str | None:
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in pod.get("containers") or []:
        for entry in container.get("env") or []:
            if entry.get("name") == name and "value" in entry:
                return str(entry["value"])
    return None


def deployed_pull_requests(existing: Iterable[Mapping[str, Any]], origin_name: str) -> dict[int, PullRequest]:
    """What each existing clone Deployment of ``origin_name`` runs, read back from what we wrote.

    The commit comes from ``CLONE_HEAD_SHA_ANNOTATION``, the branch from ``PR_BRANCH``; used by
    the image gate to keep a clone on its current commit.
    """
    result: dict[int, PullRequest] = {}
    for obj in existing:
        labels = objects.labels(obj)
        if (
            obj.get("kind") != "Deployment"
            or labels.get(contract.MANAGED_BY_LABEL) != contract.REPLICATOR_MANAGER
            or labels.get(contract.ORIGIN_LABEL) != contract.label_value(origin_name)
        ):
            continue
        sha = objects.annotations(obj).get(contract.CLONE_HEAD_SHA_ANNOTATION)
        try:
            number = int(labels.get(contract.PULL_REQUEST_LABEL, ""))
        except ValueError:
            continue
        if sha:
            branch = _env_value(obj, "PR_BRANCH") or ""
            result[number] = PullRequest(number=number, head_sha=str(sha), head_ref=branch, base_ref="")
    return result
