"""Pure helpers over Kubernetes objects as plain dicts.

Why this exists: both controllers keep raw JSON dicts (see DESIGN.md: ~10x cheaper than client
models), so the small questions — what is this object's key, does this selector match, is it
being deleted — are answered once, here, without any client import.

Guarantees: every function is pure (no I/O, never mutates its arguments) and tolerates missing
or ``null`` ``metadata`` fields the way the API server omits them.
"""

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def object_key(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` for namespaced objects, ``name`` for cluster-scoped ones (client-go's key)."""
    meta = _metadata(obj)
    name = meta.get("name") or ""
    namespace = meta.get("namespace")
    return f"{namespace}/{name}" if namespace else name


def split_key(key: str) -> tuple[str | None, str]:
    """Inverse of :func:`object_key`: ``"ns/name"`` → ``("ns", "name")``, ``"name"`` → ``(None, "name")``."""
    parts = key.split("/")
    if len(parts) == 1 and parts[0]:
        return None, parts[0]
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0], parts[1]
    raise ValueError(f"invalid object key {key!r}: want 'namespace/name' or 'name'")


def deep_copy(obj: T) -> T:
    """A plain, mutable copy; the way to change an object read from an informer cache (frozen)."""
    return thaw(obj) if isinstance(obj, FrozenDict | FrozenList) else copy.deepcopy(obj)


def _refuse(self: Any, *_: Any, **__: Any) -> None:
    raise TypeError("objects read from an informer cache are shared and frozen; change a copy (objects.deep_copy)")


class FrozenDict(dict[str, Any]):
    """A ``dict`` that refuses every change: what informer caches hand out, shared and uncopied.

    Reading needs no copy (the informers' deep copies were most of both controllers' CPU time at
    1,000 environments); a bug that writes into the cache fails loudly instead of corrupting it.
    It is still a ``dict`` (``isinstance``, ``==``, ``json.dumps`` work), and ``copy.deepcopy`` or
    :func:`deep_copy` give plain, mutable dicts and lists.
    """

    __slots__ = ()
    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = __ior__ = _refuse  # type: ignore[assignment]

    def __deepcopy__(self, _memo: Any) -> dict[str, Any]:
        return {k: thaw(v) for k, v in self.items()}

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))


class FrozenList(list[Any]):
    """The ``list`` counterpart of :class:`FrozenDict`."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __deepcopy__(self, _memo: Any) -> list[Any]:
        return [thaw(v) for v in self]

    def __copy__(self) -> list[Any]:
        return list(self)

    def __reduce__(self) -> Any:
        return (list, (list(self),))


def freeze(value: Any) -> Any:
    """``value`` with every dict and list made a :class:`FrozenDict` / :class:`FrozenList` (one walk)."""
    if isinstance(value, FrozenDict | FrozenList):
        return value
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return FrozenList([freeze(v) for v in value])
    return value


def thaw(value: Any) -> Any:
    """A plain, mutable deep copy of a (possibly frozen) JSON-like value."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [thaw(v) for v in value]
    return value


def annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    """The object's annotations (a new dict; empty when absent)."""
    return dict(_metadata(obj).get("annotations") or {})


def labels(obj: Mapping[str, Any]) -> dict[str, str]:
    """The object's labels (a new dict; empty when absent)."""
    return dict(_metadata(obj).get("labels") or {})


def name(obj: Mapping[str, Any]) -> str:
    return str(_metadata(obj).get("name") or "")


def namespace(obj: Mapping[str, Any]) -> str | None:
    ns = _metadata(obj).get("namespace")
    return str(ns) if ns else None


def uid(obj: Mapping[str, Any]) -> str | None:
    value = _metadata(obj).get("uid")
    return str(value) if value else None


def resource_version(obj: Mapping[str, Any]) -> str | None:
    value = _metadata(obj).get("resourceVersion")
    return str(value) if value else None


def match_labels(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Does a ``LabelSelector`` (``matchLabels`` + ``matchExpressions``) select ``labels``?

    As in apimachinery: an empty (or ``None``) selector matches everything; an unknown operator
    matches nothing (fail closed rather than select more than asked for).
    """
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key = expr.get("key", "")
        operator = expr.get("operator")
        values = expr.get("values") or []
        if operator == "In":
            ok = key in labels and labels[key] in values
        elif operator == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif operator == "Exists":
            ok = key in labels
        elif operator == "DoesNotExist":
            ok = key not in labels
        else:
            ok = False
        if not ok:
            return False
    return True


def selector_matches_labels(service_selector: Mapping[str, str] | None, pod_labels: Mapping[str, str]) -> bool:
    """Does a Service's ``spec.selector`` select a pod with ``pod_labels``?

    Unlike a LabelSelector, an empty Service selector selects *nothing* (the Service has no
    endpoints managed by Kubernetes).
    """
    if not service_selector:
        return False
    return all(pod_labels.get(key) == value for key, value in service_selector.items())


def owner_reference(
    obj: Mapping[str, Any], *, controller: bool = True, block_owner_deletion: bool = False
) -> dict[str, Any]:
    """An ``ownerReference`` pointing at ``obj`` (needs apiVersion, kind, name and uid)."""
    meta = _metadata(obj)
    missing = [
        field
        for field, value in (
            ("apiVersion", obj.get("apiVersion")),
            ("kind", obj.get("kind")),
            ("metadata.name", meta.get("name")),
            ("metadata.uid", meta.get("uid")),
        )
        if not value
    ]
    if missing:
        raise ValueError(f"cannot reference an owner without {', '.join(missing)}")
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": block_owner_deletion,
    }


def is_owned_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    """Does ``obj`` carry an ownerReference to ``owner``'s uid?"""
    owner_uid = uid(owner)
    return owner_uid is not None and any(
        ref.get("uid") == owner_uid for ref in _metadata(obj).get("ownerReferences") or []
    )


def is_being_deleted(obj: Mapping[str, Any]) -> bool:
    """Has deletion been requested (``metadata.deletionTimestamp`` set; finalizers may hold it)?"""
    return bool(_metadata(obj).get("deletionTimestamp"))


def has_finalizer(obj: Mapping[str, Any], finalizer: str) -> bool:
    return finalizer in (_metadata(obj).get("finalizers") or [])


def now_rfc3339() -> str:
    """UTC now as Kubernetes writes ``metav1.Time``: seconds precision, ``Z`` suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_METADATA_THAT_MATTERS = ("labels", "annotations", "ownerReferences", "finalizers", "deletionTimestamp")


def changed_beyond_status(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether an update changed more than ``status`` (controller-runtime's generation and
    metadata predicates together): a new generation (the spec), labels, annotations, owners,
    finalizers or deletion. A resync (the same object twice) counts as a change, so a level-based
    controller still looks again at every object once a resync period."""
    if old is new:
        return True
    old_meta, new_meta = _metadata(old), _metadata(new)
    if old_meta.get("generation") != new_meta.get("generation") or old.get("spec") != new.get("spec"):
        return True
    return any(old_meta.get(key) != new_meta.get(key) for key in _METADATA_THAT_MATTERS)
