"""The arithmetic and conditions of kube-controller-manager's deployment util, as pure functions.

Fenceposts (``maxSurge`` rounded up, ``maxUnavailable`` down, never both 0), the status that
``calculateStatus`` derives from the ReplicaSets (zero counts omitted, as the API's ``omitempty``),
``SetDeploymentCondition``'s rules for keeping transition times, and the "complete" and "made
progress" tests that decide the ``Progressing`` condition. Plain dicts in, plain dicts out; the
controller in ``deployments`` does the reading and writing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import Any

from .meta import now

KEY = "deployments.apps"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
NOT_COPIED = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
}
MAX_REVISION_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Any) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:10])


# --- arithmetic of the real deployment util -----------------------------------------------------
def _int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)


def fenceposts(d: dict[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) of a RollingUpdate: surge rounded up, unavailable down, never both 0."""
    spec = d["spec"]
    if (spec.get("strategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    rolling = spec["strategy"].get("rollingUpdate") or {}
    replicas = replicas_of(d)
    surge = _int_or_percent(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = _int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(d: dict[str, Any]) -> int:
    if replicas_of(d) == 0:
        return 0
    return min(fenceposts(d)[1], replicas_of(d))


def replicas_of(obj: dict[str, Any]) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1))


def count(rss: list[dict[str, Any]], field: str) -> int:
    return sum(int((rs.get("status") or {}).get(field) or 0) for rs in rss)


def revision_of(rs: dict[str, Any]) -> int:
    value = (rs["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "0")
    return int(value) if value.isdigit() else 0


def condition_of(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), None)


def new_condition(ctype: str, status: str, reason: str, message: str) -> dict[str, Any]:
    t = now()
    return {
        "type": ctype,
        "status": status,
        "lastUpdateTime": t,
        "lastTransitionTime": t,
        "reason": reason,
        "message": message,
    }


def set_condition(status: dict[str, Any], condition: dict[str, Any]) -> None:
    """``SetDeploymentCondition``: same status and reason change nothing; same status keeps the transition time."""
    current = condition_of(status, condition["type"])
    if current and current["status"] == condition["status"] and current.get("reason") == condition["reason"]:
        return
    if current and current["status"] == condition["status"]:
        condition["lastTransitionTime"] = current["lastTransitionTime"]
    status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != condition["type"]] + [condition]


def remove_condition(status: dict[str, Any], ctype: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != ctype]


def has_deadline(d: dict[str, Any]) -> bool:
    deadline = d["spec"].get("progressDeadlineSeconds")
    return deadline is not None and deadline != MAX_INT32


def is_complete(d: dict[str, Any], status: dict[str, Any]) -> bool:
    n = replicas_of(d)
    return (
        status.get("updatedReplicas", 0) == n
        and status.get("replicas", 0) == n
        and status.get("availableReplicas", 0) == n
        and status.get("observedGeneration", 0) >= d["metadata"].get("generation", 1)
    )


def is_progressing(d: dict[str, Any], new: dict[str, Any]) -> bool:
    old = d.get("status") or {}

    def g(s: dict[str, Any], k: str) -> int:
        return int(s.get(k) or 0)

    return (
        g(new, "updatedReplicas") > g(old, "updatedReplicas")
        or g(new, "replicas") - g(new, "updatedReplicas") < g(old, "replicas") - g(old, "updatedReplicas")
        or g(new, "readyReplicas") > g(old, "readyReplicas")
        or g(new, "availableReplicas") > g(old, "availableReplicas")
    )


def calculate_status(d: dict[str, Any], all_rss: list[dict[str, Any]], new_rs: dict[str, Any] | None) -> dict[str, Any]:
    available = count(all_rss, "availableReplicas")
    total = sum(replicas_of(rs) for rs in all_rss)
    old = d.get("status") or {}
    status: dict[str, Any] = {}
    for key, value in (
        ("observedGeneration", d["metadata"].get("generation", 1)),
        ("replicas", count(all_rss, "replicas")),
        ("updatedReplicas", count([new_rs] if new_rs else [], "replicas")),
        ("readyReplicas", count(all_rss, "readyReplicas")),
        ("availableReplicas", available),
        ("unavailableReplicas", max(0, total - available)),
        ("collisionCount", old.get("collisionCount")),
    ):
        if value:
            status[key] = value
    status["conditions"] = copy.deepcopy(old.get("conditions") or [])
    if available >= replicas_of(d) - max_unavailable(d):
        cond = new_condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    else:
        cond = new_condition(
            "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
        )
    set_condition(status, cond)
    return status


def equal_ignoring_hash(rs_template: dict[str, Any], template: dict[str, Any]) -> bool:
    a = copy.deepcopy(rs_template)
    (a.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    b = copy.deepcopy(template)
    (b.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return a == b
