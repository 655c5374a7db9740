"""Keeping clone pods and origin pods apart: which labels a clone's pods carry, and why.

Services select pods by equality on labels, so the only way an origin Service can miss a clone
pod is for the clone pod to differ on a label that Service selects on. This module decides
those labels and proves the result: pure functions over the origin Deployment and every Service
of its namespace.

The rule: for every Service that selects the origin's pods, the labels it selects on get the
value ``<value>-pr<N>`` on the clone's pods, except Istio's workload name (``app``,
``app.kubernetes.io/name``) when the Service also selects on another label, so the clone shows
up in telemetry as a new version of the same app. ``version`` (and Istio's other revision labels
when present) becomes ``pr-<N>``. Every other label is kept, so mesh policies and tooling that
select workloads by label still apply. The clone's pods also get ``contract.CLONE_LABEL: <clone
name>``, the clone Deployment's and clone Services' whole selector. Finally every Service in the
namespace is checked against the clone's pod labels; one that would still match is a
:class:`CloneError`, never a silently shared endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from controller_common import contract, objects

VERSION_LABEL = "version"
PRESERVED_LABELS = ("app", "app.kubernetes.io/name")
"""Istio's workload name (canonical service, telemetry ``app``, workload selectors): kept unless a
Service selects the origin on nothing else."""
REVISION_LABELS = ("service.istio.io/canonical-revision", "app.kubernetes.io/version")
"""Istio reads the canonical revision from these before ``version``: set to ``pr-<N>`` when present."""


class CloneError(ValueError):
    """The origin cannot be cloned safely (bad image template result, a Service that would select clones)."""


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def pod_labels(deployment: Mapping[str, Any]) -> dict[str, str]:
    template = (deployment.get("spec") or {}).get("template") or {}
    return dict((template.get("metadata") or {}).get("labels") or {})


def is_replicator_managed(obj: Mapping[str, Any]) -> bool:
    return bool(objects.labels(obj).get(contract.MANAGED_BY_LABEL) == contract.REPLICATOR_MANAGER)


def _namespace_services(origin: Mapping[str, Any], services: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The namespace's Services that are not our clones (``metadata.namespace`` absent counts as same)."""
    namespace = _meta(origin).get("namespace")
    return [s for s in services if _meta(s).get("namespace") in (None, namespace) and not is_replicator_managed(s)]


def origin_services(origin: Mapping[str, Any], services: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Services that select the origin's pods (non-empty selector, subset of its pod labels), by name."""
    labels = pod_labels(origin)
    chosen = [
        s
        for s in _namespace_services(origin, services)
        if (s.get("spec") or {}).get("type") != "ExternalName"
        and objects.selector_matches_labels((s.get("spec") or {}).get("selector"), labels)
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
        for key, value in pod_labels(origin).items()
    }
    labels[VERSION_LABEL] = f"pr-{pr_number}"
    for key in REVISION_LABELS:
        if key in labels and key not in selected_keys:
            labels[key] = f"pr-{pr_number}"
    labels[contract.ORIGIN_LABEL] = contract.label_value(str(_meta(origin)["name"]))
    labels[contract.PULL_REQUEST_LABEL] = str(pr_number)
    labels[contract.CLONE_LABEL] = clone
    for service in namespace_services:
        if objects.selector_matches_labels((service.get("spec") or {}).get("selector"), labels):
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


def retarget_self_selectors(pod_spec: dict[str, Any], origin_labels: Mapping[str, str], clone: str) -> None:
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
