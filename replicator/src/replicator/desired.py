"""The clones an origin should have: one Deployment and its Services per selected pull request.

Pure: the origin Deployment, every Service in its namespace and the pull requests go in; plain
dicts ready to create come out. The guarantees, each enforced here rather than hoped for:

* Nothing the server owns is copied (status, uid, resourceVersion, managedFields, revision
  annotations, the origin's ownerReferences, cluster IPs, node ports, load-balancer fields), and
  no replication opt-in annotation, so a clone is never itself an origin.
* **Label rewriting.** For every Service in the namespace that selects the origin's pods, the
  labels it selects on get the value ``<value>-pr<N>`` on the clone's pods, so that Service
  misses the clone; Istio's workload name (``app``, ``app.kubernetes.io/name``) is spared when
  the Service also selects on another label, so the clone shows up in telemetry as a new
  version of the same app. ``version`` (and Istio's other revision labels when present)
  becomes ``pr-<N>``. Every other label is kept, so mesh policies and tooling that select
  workloads by label (AuthorizationPolicy, Sidecar, PodMonitor...) still apply. The clone's
  pods also get ``contract.CLONE_LABEL: <clone name>``, which is the clone Deployment's and
  clone Services' whole selector, so each clone Service selects exactly its clone. After
  building, *every* Service's selector in the namespace is checked against the clone pod
  labels and a :class:`CloneError` is raised if one would still match.
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

from controller_common import contract
from replicator.image import is_pinned, render_image
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
VERSION_LABEL = "version"
PRESERVED_LABELS = ("app", "app.kubernetes.io/name")
"""Istio's workload name (canonical service, telemetry ``app``, workload selectors): kept unless a
Service selects the origin on nothing else."""
REVISION_LABELS = ("service.istio.io/canonical-revision", "app.kubernetes.io/version")
"""Istio reads the canonical revision from these before ``version``: set to ``pr-<N>`` when present."""
CLONE_REVISION_HISTORY_LIMIT = 2
"""Every push rolls a clone; a short history keeps old ReplicaSets from piling up per PR."""


class CloneError(ValueError):
    """The origin cannot be cloned safely (bad image template result, a Service that would select clones)."""


@dataclass(frozen=True)
class CloneSet:
    """Everything one pull request's environment consists of, for one origin."""

    pull_request: PullRequest
    deployment: dict[str, Any]
    services: tuple[dict[str, Any], ...]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _pod_labels(deployment: Mapping[str, Any]) -> dict[str, str]:
    template = (deployment.get("spec") or {}).get("template") or {}
    return dict((template.get("metadata") or {}).get("labels") or {})


def is_replicator_managed(obj: Mapping[str, Any]) -> bool:
    return bool((_meta(obj).get("labels") or {}).get(contract.MANAGED_BY_LABEL) == contract.REPLICATOR_MANAGER)


def selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """A Service's equality selector matches ``labels`` (an empty selector selects nothing)."""
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


def _namespace_services(origin: Mapping[str, Any], services: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The namespace's Services that are not our clones (``metadata.namespace`` absent counts as same)."""
    namespace = _meta(origin).get("namespace")
    return [s for s in services if _meta(s).get("namespace") in (None, namespace) and not is_replicator_managed(s)]


def origin_services(origin: Mapping[str, Any], services: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Services that select the origin's pods (non-empty selector, subset of its pod labels), by name."""
    labels = _pod_labels(origin)
    chosen = [
        s
        for s in _namespace_services(origin, services)
        if (s.get("spec") or {}).get("type") != "ExternalName"
        and selects((s.get("spec") or {}).get("selector"), labels)
    ]
    return sorted(chosen, key=lambda s: str(_meta(s).get("name")))


def rewritten_label_value(value: str, pr_number: int) -> str:
    """``<value>-pr<N>`` as a valid label value (≤ 63, stable hash when shortened)."""
    return contract.clone_name(value, pr_number) if value else f"pr{pr_number}"


def rewritten_keys(origin: Mapping[str, Any], services: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Pod labels whose value the clone must change so that no Service selecting the origin selects it.

    For each Service selecting the origin's pods: the keys it selects on, except the workload
    name labels (``PRESERVED_LABELS``) whenever the Service selects on anything else as well.
    Each such Service then differs from the clone on at least one key, and ``app`` survives
    whenever it can.
    """
    keys: set[str] = set()
    for service in origin_services(origin, services):
        selector_keys = set((service.get("spec") or {}).get("selector") or {})
        keys |= (selector_keys - set(PRESERVED_LABELS)) or selector_keys
    return frozenset(keys)


def clone_pod_labels(
    origin: Mapping[str, Any], services: Iterable[Mapping[str, Any]], pr_number: int
) -> dict[str, str]:
    """The clone's pod labels (see the module docstring for the rule), checked against every Service."""
    namespace_services = _namespace_services(origin, services)
    selected_keys = rewritten_keys(origin, namespace_services)
    clone = contract.clone_name(str(_meta(origin)["name"]), pr_number)
    labels = {
        key: rewritten_label_value(str(value), pr_number) if key in selected_keys else value
        for key, value in _pod_labels(origin).items()
    }
    labels[VERSION_LABEL] = f"pr-{pr_number}"
    for key in REVISION_LABELS:
        if key in labels and key not in selected_keys:
            labels[key] = f"pr-{pr_number}"
    labels[contract.ORIGIN_LABEL] = contract.label_value(str(_meta(origin)["name"]))
    labels[contract.PULL_REQUEST_LABEL] = str(pr_number)
    labels[contract.CLONE_LABEL] = clone
    for service in namespace_services:
        if selects((service.get("spec") or {}).get("selector"), labels):
            raise CloneError(
                f"Service {_meta(service).get('name')} would select the pods of clone {clone} "
                f"(its selector uses labels the replicator sets); change that Service's selector"
            )
    return labels


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Full ``LabelSelector`` semantics (matchLabels and matchExpressions); an empty selector matches all."""
    if selector is None:
        return False
    if not _subset_of(selector.get("matchLabels") or {}, labels):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _subset_of(wanted: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def _pod_selectors(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod-label selectors inside a pod spec: (anti-)affinity terms and topology spread constraints."""
    holders: list[dict[str, Any]] = []
    affinity = pod_spec.get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        terms = affinity.get(kind) or {}
        holders.extend(terms.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        holders.extend(
            weighted["podAffinityTerm"]
            for weighted in terms.get("preferredDuringSchedulingIgnoredDuringExecution") or []
            if weighted.get("podAffinityTerm")
        )
    holders.extend(pod_spec.get("topologySpreadConstraints") or [])
    return [h for h in holders if h.get("labelSelector") is not None]


def _retarget_self_selectors(pod_spec: dict[str, Any], origin_labels: Mapping[str, str], clone: str) -> None:
    """Scheduling rules about "pods like me" keep meaning that: they now name the clone's own pods.

    Left as they were, an origin's required anti-affinity (one pod per node) would keep a clone
    pod off every node running the origin, and its spread constraints would count the wrong pods.
    Selectors about other workloads are left untouched.
    """
    for holder in _pod_selectors(pod_spec):
        if label_selector_matches(holder["labelSelector"], origin_labels) and (
            holder["labelSelector"].get("matchLabels") or holder["labelSelector"].get("matchExpressions")
        ):
            holder["labelSelector"] = {"matchLabels": {contract.CLONE_LABEL: clone}}


def _ownership_labels(origin_name: str, pr_number: int, clone: str) -> dict[str, str]:
    return {
        contract.MANAGED_BY_LABEL: contract.REPLICATOR_MANAGER,
        contract.ORIGIN_LABEL: contract.label_value(origin_name),
        contract.PULL_REQUEST_LABEL: str(pr_number),
        contract.CLONE_LABEL: clone,
    }


def _object_labels(source: Mapping[str, Any], ownership: Mapping[str, str]) -> dict[str, str]:
    labels = {k: v for k, v in (_meta(source).get("labels") or {}).items() if k not in FOREIGN_OWNERSHIP_LABELS}
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
    _retarget_self_selectors(pod_spec, _pod_labels(origin), clone)

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
    """
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
        labels = _meta(obj).get("labels") or {}
        if (
            obj.get("kind") != "Deployment"
            or labels.get(contract.MANAGED_BY_LABEL) != contract.REPLICATOR_MANAGER
            or labels.get(contract.ORIGIN_LABEL) != contract.label_value(origin_name)
        ):
            continue
        sha = (_meta(obj).get("annotations") or {}).get(contract.CLONE_HEAD_SHA_ANNOTATION)
        try:
            number = int(labels.get(contract.PULL_REQUEST_LABEL, ""))
        except ValueError:
            continue
        if sha:
            branch = _env_value(obj, "PR_BRANCH") or ""
            result[number] = PullRequest(number=number, head_sha=str(sha), head_ref=branch, base_ref="")
    return result
