"""What to write: the difference between the clones we want and the clones that exist.

Pure. Objects are keyed by ``(kind, namespace, name)``. The rules that keep the controller
quiet and safe:

* **Steady state is an empty plan.** Each object we write carries a hash of what we wrote
  (``contract.CLONE_SPEC_HASH_ANNOTATION``). An update is planned only when that hash differs
  (our intent changed) or a field we own drifted (labels and annotations we set, owner
  references, replicas, selector, container images, Service type). Fields the server defaults or
  normalises are never compared, so they never cause an update.
* **Never overwrite what is not ours.** A desired name taken by an object that is not a clone of
  this origin is a conflict: reported, left alone.
* **Prune only our own.** Only objects labelled as managed by the replicator *for this origin*
  are ever deleted.
* An object already being deleted is left to finish (``pending``); it is recreated afterwards.
* An update (a PUT) keeps what other controllers added to a clone: finalizers (the
  service-router's), foreign labels and annotations, the Service's allocated addresses.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller_common import contract, objects

ObjectKey = tuple[str, str, str]
"""``(kind, namespace, name)``."""

_KIND_ORDER = {"Deployment": 0, "Service": 1}
_SERVICE_ALLOCATED = ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy")


@dataclass(frozen=True)
class Conflict:
    key: ObjectKey
    reason: str


@dataclass(frozen=True)
class Plan:
    creates: tuple[dict[str, Any], ...] = ()
    """Objects to create, Deployments before Services (so a Service can reference its Deployment)."""
    updates: tuple[dict[str, Any], ...] = ()
    """Objects to replace (PUT), each carrying the existing object's ``metadata.resourceVersion``."""
    deletes: tuple[dict[str, Any], ...] = ()
    """Existing clones of this origin that are no longer wanted, Services before Deployments."""
    conflicts: tuple[Conflict, ...] = ()
    pending: tuple[ObjectKey, ...] = field(default=())
    """Desired objects whose name is held by one of our clones still being deleted."""

    @property
    def is_empty(self) -> bool:
        return not (self.creates or self.updates or self.deletes)


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    kind = obj.get("kind")
    if not kind:
        raise ValueError(
            f"object {(obj.get('metadata') or {}).get('name')!r} has no kind; list items must have kind set"
        )
    metadata = obj.get("metadata") or {}
    return (str(kind), str(metadata.get("namespace") or ""), str(metadata.get("name")))


def is_managed_clone(obj: Mapping[str, Any], origin_name: str) -> bool:
    """The object was made by the replicator as a clone of the origin named ``origin_name``."""
    labels = objects.labels(obj)
    return bool(
        labels.get(contract.MANAGED_BY_LABEL) == contract.REPLICATOR_MANAGER
        and labels.get(contract.ORIGIN_LABEL) == contract.label_value(origin_name)
        and objects.annotations(obj).get(contract.CLONE_ORIGIN_ANNOTATION, origin_name) == origin_name
    )


def origin_name_of(obj: Mapping[str, Any]) -> str | None:
    """The origin Deployment a clone belongs to, or None when the object is not one of our clones.

    Read from ``CLONE_ORIGIN_ANNOTATION`` (the full name); the origin label is only a fallback
    because it is hashed when the name exceeds 63 characters.
    """
    labels = objects.labels(obj)
    if labels.get(contract.MANAGED_BY_LABEL) != contract.REPLICATOR_MANAGER:
        return None
    name = objects.annotations(obj).get(contract.CLONE_ORIGIN_ANNOTATION) or labels.get(contract.ORIGIN_LABEL)
    return str(name) if name else None


def spec_hash(obj: Mapping[str, Any]) -> str:
    """Stable hash of an object as we would write it (ignoring the hash itself and resourceVersion)."""
    clean = copy.deepcopy(dict(obj))
    metadata = clean.setdefault("metadata", {})
    metadata.pop("resourceVersion", None)
    (metadata.get("annotations") or {}).pop(contract.CLONE_SPEC_HASH_ANNOTATION, None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def stamped(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` carrying its :func:`spec_hash` annotation."""
    result = copy.deepcopy(dict(obj))
    digest = spec_hash(result)
    result.setdefault("metadata", {}).setdefault("annotations", {})[contract.CLONE_SPEC_HASH_ANNOTATION] = digest
    return result


def _subset(wanted: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    return all(actual.get(k) == v for k, v in wanted.items())


def _images(obj: Mapping[str, Any]) -> dict[str, Any]:
    pod = (((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}
    return {c.get("name"): c.get("image") for c in pod.get("containers") or []}


def _owned_fields_drifted(desired: Mapping[str, Any], existing: Mapping[str, Any]) -> bool:
    if not _subset(objects.labels(desired), objects.labels(existing)):
        return True
    if not _subset(objects.annotations(desired), objects.annotations(existing)):
        return True
    desired_owners = {r.get("uid") for r in (desired.get("metadata") or {}).get("ownerReferences") or []}
    existing_owners = {r.get("uid") for r in (existing.get("metadata") or {}).get("ownerReferences") or []}
    if not desired_owners <= existing_owners:
        return True
    want, have = desired.get("spec") or {}, existing.get("spec") or {}
    if desired.get("kind") == "Deployment":
        return (
            want.get("replicas") != have.get("replicas")
            or want.get("selector") != have.get("selector")
            or not _subset(_images(desired), _images(existing))
        )
    if desired.get("kind") == "Service":
        return want.get("selector") != have.get("selector") or want.get("type", "ClusterIP") != have.get(
            "type", "ClusterIP"
        )
    return False


def _update_object(desired: dict[str, Any], existing: Mapping[str, Any]) -> dict[str, Any]:
    update = copy.deepcopy(desired)
    have_meta = existing.get("metadata") or {}
    metadata = update["metadata"]
    metadata["resourceVersion"] = have_meta.get("resourceVersion")
    # A PUT replaces the whole object: keep what other controllers put on our clones (the
    # service-router's finalizer, their labels and annotations); ours win on shared keys.
    if have_meta.get("finalizers"):
        metadata["finalizers"] = list(have_meta["finalizers"])
    for field_name in ("labels", "annotations"):
        merged = {**(have_meta.get(field_name) or {}), **(metadata.get(field_name) or {})}
        if merged:
            metadata[field_name] = merged
    if desired.get("kind") == "Service":
        # Addresses are the server's: carry them over so a PUT never asks to change an immutable field.
        have = existing.get("spec") or {}
        for key in _SERVICE_ALLOCATED:
            if key not in update["spec"] and key in have:
                update["spec"][key] = copy.deepcopy(have[key])
    return update


def _order(obj: Mapping[str, Any]) -> tuple[int, str]:
    return (_KIND_ORDER.get(str(obj.get("kind")), 9), str((obj.get("metadata") or {}).get("name")))


def plan(desired: Iterable[Mapping[str, Any]], existing: Iterable[Mapping[str, Any]], *, origin_name: str) -> Plan:
    """Plan the writes that turn ``existing`` into ``desired`` for the origin ``origin_name``.

    ``existing`` may hold anything the caller listed (it is filtered): clones of this origin are
    pruned when not desired; every other object only matters when a desired name collides with it.
    """
    existing_by_key: dict[ObjectKey, Mapping[str, Any]] = {object_key(o): o for o in existing}
    wanted: dict[ObjectKey, dict[str, Any]] = {}
    for obj in desired:
        wanted[object_key(obj)] = stamped(obj)

    creates: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    conflicts: list[Conflict] = []
    pending: list[ObjectKey] = []
    for key, obj in wanted.items():
        current = existing_by_key.get(key)
        if current is None:
            creates.append(obj)
        elif not is_managed_clone(current, origin_name):
            labels = objects.labels(current)
            if labels.get(contract.MANAGED_BY_LABEL) == contract.REPLICATOR_MANAGER:
                reason = f"already a clone of origin {labels.get(contract.ORIGIN_LABEL)!r}"
            else:
                reason = "exists and is not managed by the replicator"
            conflicts.append(Conflict(key, reason))
        elif objects.is_being_deleted(current):
            pending.append(key)
        elif objects.annotations(current).get(contract.CLONE_SPEC_HASH_ANNOTATION) != objects.annotations(obj).get(
            contract.CLONE_SPEC_HASH_ANNOTATION
        ) or _owned_fields_drifted(obj, current):
            updates.append(_update_object(obj, current))

    deletes = [
        dict(obj)
        for key, obj in existing_by_key.items()
        if key not in wanted and is_managed_clone(obj, origin_name) and not objects.is_being_deleted(obj)
    ]
    return Plan(
        creates=tuple(sorted(creates, key=_order)),
        updates=tuple(sorted(updates, key=_order)),
        deletes=tuple(sorted(deletes, key=lambda o: (-_order(o)[0], _order(o)[1]))),
        conflicts=tuple(sorted(conflicts, key=lambda c: c.key)),
        pending=tuple(sorted(pending)),
    )
