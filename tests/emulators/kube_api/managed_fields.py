"""``metadata.managedFields``: which field manager set which fields, for Update operations.

The real server tracks field ownership for server-side apply. We keep the part clients can see
without apply: each create/update/patch makes its manager (``fieldManager``, else the User-Agent's
product name) the owner of the fields it changed, in the FieldsV1 format (``f:`` fields, ``k:``
associative-list keys from the schema, ``v:`` set members, ``.`` for a map or item the manager
created); fields nobody owns any more are dropped. Status writes are recorded with
``subresource: status``. Approximate where ownership rules get subtle; there is no Apply operation.
"""

from __future__ import annotations

import json
from typing import Any

from . import builtin_schema

Path = tuple[str, ...]
_SERVER_METADATA = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
}


def manager_for(field_manager: str | None, user_agent: str) -> str:
    return (field_manager or user_agent.split("/", 1)[0] or "unknown")[:128]


def _child(schema: dict[str, Any] | None, key: str | None, builtin: bool) -> dict[str, Any] | None:
    if builtin:
        return builtin_schema.child(schema, key)
    if not isinstance(schema, dict):
        return None
    if key is None:
        return schema.get("items") if isinstance(schema.get("items"), dict) else None
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    return props.get(key) or (extra if isinstance(extra, dict) else None)


def _leaves(
    value: Any, schema: dict[str, Any] | None, builtin: bool, prefix: Path, out: dict[Path, Any], item: bool = False
) -> None:
    node = (builtin_schema.resolve(schema) if builtin else schema) or {}
    if isinstance(value, dict) and value and node.get("x-kubernetes-map-type") != "atomic":
        is_map = isinstance(node.get("additionalProperties"), dict) or not node.get("properties")
        if prefix and (is_map or item):  # maps and list items carry ".", plain structs do not
            out[(*prefix, ".")] = None
        for key, child in value.items():
            _leaves(child, _child(schema, key, builtin), builtin, (*prefix, f"f:{key}"), out)
        return
    if isinstance(value, list) and value:
        keys = node.get("x-kubernetes-list-map-keys") or []
        kind = node.get("x-kubernetes-list-type")
        item_schema = _child(schema, None, builtin)
        if keys and all(isinstance(i, dict) and all(k in i for k in keys) for i in value):
            for element in value:
                ident = "k:" + json.dumps({k: element[k] for k in keys}, separators=(",", ":"), sort_keys=True)
                _leaves(element, item_schema, builtin, (*prefix, ident), out, item=True)
            return
        if kind == "set" and all(not isinstance(i, (dict, list)) for i in value):
            for element in value:
                out[(*prefix, "v:" + json.dumps(element))] = None
            return
    out[prefix] = value


def field_values(obj: dict[str, Any], schema: dict[str, Any] | None, builtin: bool, status: bool) -> dict[Path, Any]:
    """Leaf paths of the fields a manager can own, with their values."""
    out: dict[Path, Any] = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind") or (key == "status") != status:
            continue
        if key == "metadata":
            meta = {k: v for k, v in value.items() if k not in _SERVER_METADATA}
            if meta:
                _leaves(meta, _child(schema, "metadata", builtin), builtin, ("f:metadata",), out)
        else:
            _leaves(value, _child(schema, key, builtin), builtin, (f"f:{key}",), out)
    return out


def _to_trie(paths: set[Path]) -> dict[str, Any]:
    trie: dict[str, Any] = {}
    for path in sorted(paths):
        node = trie
        for part in path:
            node = node.setdefault(part, {})
    return trie


def _from_trie(trie: dict[str, Any], prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for key, child in trie.items():
        if isinstance(child, dict) and child:
            paths |= _from_trie(child, (*prefix, key))
        else:
            paths.add((*prefix, key))
    return paths


def owned_paths(entry: dict[str, Any]) -> set[Path]:
    return _from_trie(entry.get("fieldsV1") or {})


def update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    subresource: str,
    schema: dict[str, Any] | None,
    builtin: bool,
    time: str,
    applied: set[Path] | None = None,
) -> list[dict[str, Any]]:
    """The managedFields of ``new`` after ``manager`` wrote it over ``old`` (None on create).

    ``applied``: the field paths of a server-side apply configuration; the manager then owns
    exactly those (operation Apply) instead of gaining what it changed (operation Update).
    """
    operation = "Update" if applied is None else "Apply"
    status = subresource == "status"
    before = field_values(old, schema, builtin, status) if old else {}
    after = field_values(new, schema, builtin, status)
    changed = {p for p, v in after.items() if p not in before or before[p] != v}
    removed = set(before) - set(after)
    entries = []
    mine: set[Path] = set()
    for entry in (old or {}).get("metadata", {}).get("managedFields") or []:
        owned = _from_trie(entry.get("fieldsV1") or {})
        if (
            entry.get("manager") == manager
            and entry.get("operation") == operation
            and (entry.get("subresource", "") == subresource)
        ):
            mine = owned
            continue
        same_scope = (entry.get("subresource", "") == "status") == status
        kept = owned - changed - removed if same_scope else owned
        if kept:
            entries.append(dict(entry, fieldsV1=_to_trie(kept)))
    mine = (mine | changed) - removed if applied is None else {p for p in applied if p in after}
    if mine:
        entry = {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version,
            "time": time,
            "fieldsType": "FieldsV1",
            "fieldsV1": _to_trie(mine),
        }
        if subresource:
            entry["subresource"] = subresource
        entries.append(entry)
    return entries
