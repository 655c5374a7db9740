"""Server-side apply (``PATCH`` with ``application/apply-patch+yaml``), as ``kubectl apply --server-side``.

The applied configuration is merged into the object (created when missing); its manager then
owns exactly the fields it applied (operation Apply in ``managedFields``). Applying a different
value to a field another manager owns is a 409 listing the conflicts, unless ``force=true``, which
takes the field over. Fields this manager applied before, left out now and owned by nobody else,
are removed. Ownership follows ``managed_fields`` (approximate where the real rules get subtle).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from . import builtin_schema, managed_fields, patch, validation
from .errors import ApiError, bad_request
from .resources import ResourceType
from .rest import Api

Path = tuple[str, ...]


def _render(path: Path) -> str:
    out = ""
    for part in path:
        if part.startswith("f:"):
            out += "." + part[2:]
        elif part.startswith("k:"):
            keys = json.loads(part[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
        elif part.startswith("v:"):
            out += f"[={part[2:]}]"
    return out


def _remove(obj: Any, path: Path) -> None:
    """Delete the field (or associative-list item, or set member) at ``path``, if present."""
    if path and path[-1] == ".":
        if len(path) >= 2 and path[-2].startswith("k:"):
            _remove(obj, path[:-1])
        return
    parent: Any = obj
    for part in path[:-1]:
        parent = _step(parent, part)
        if parent is None:
            return
    last = path[-1] if path else ""
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        keys = json.loads(last[2:])
        parent[:] = [i for i in parent if not (isinstance(i, dict) and all(i.get(k) == v for k, v in keys.items()))]
    elif last.startswith("v:") and isinstance(parent, list):
        value = json.loads(last[2:])
        parent[:] = [i for i in parent if i != value]


def _step(node: Any, part: str) -> Any:
    if part.startswith("f:") and isinstance(node, dict):
        return node.get(part[2:])
    if part.startswith("k:") and isinstance(node, list):
        keys = json.loads(part[2:])
        return next((i for i in node if isinstance(i, dict) and all(i.get(k) == v for k, v in keys.items())), None)
    return None


def server_side_apply(
    api: Api, rt: ResourceType, namespace: str, name: str, raw: bytes, query: dict[str, str]
) -> tuple[dict[str, Any], list[str], bool]:
    """Returns (object, warnings, created)."""
    manager = query.get("fieldManager") or ""
    force = (query.get("force") or "").lower() == "true"
    directive = validation.directive_of(query.get("fieldValidation"))
    try:
        applied = yaml.safe_load(raw or b"")
    except yaml.YAMLError as exc:
        raise bad_request(f"error decoding YAML: {exc}") from None
    if not isinstance(applied, dict) or not applied.get("apiVersion") or not applied.get("kind"):
        raise bad_request("invalid object: apply configurations must set apiVersion and kind")
    obj = api._decode(rt, applied, namespace)
    if obj["metadata"].get("name") != name:
        raise bad_request(
            f"the name of the object ({obj['metadata'].get('name')}) does not match the name on the URL ({name})"
        )
    schema = builtin_schema.kind_schema(rt.kind, rt.api_version) if rt.builtin else rt.schema
    values = managed_fields.field_values(obj, schema, rt.builtin, status=False)
    paths = set(values)
    with api.store.lock:
        api._namespace_ok(rt, namespace)
        current = api.store.get(rt.storage_key, namespace if rt.namespaced else "", name)
        if current is None:
            made, warnings = api.create(rt, namespace, copy.deepcopy(obj), query, applied=paths)
            return made, warnings, True
        current_out = api.out(rt, current)
        now_values = managed_fields.field_values(current_out, schema, rt.builtin, status=False)
        previous: set[Path] = set()
        others: set[Path] = set()
        conflicts: list[tuple[str, Path]] = []
        for entry in current["metadata"].get("managedFields") or []:
            owned = managed_fields.owned_paths(entry)
            if entry.get("subresource"):
                continue
            if entry.get("manager") == manager and entry.get("operation") == "Apply":
                previous = owned
                continue
            others |= owned
            for p in sorted(owned & paths):
                if p[-1] != "." and now_values.get(p) != values.get(p):
                    conflicts.append((str(entry.get("manager")), p))
        if conflicts and not force:
            raise _conflict(conflicts, rt.api_version)
        merged = patch.strategic_merge(current_out, obj, schema) if rt.builtin else patch.merge_patch(current_out, obj)
        for p in sorted(previous - paths - others, key=len, reverse=True):
            _remove(merged, p)
        merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        result, warnings = api._update_locked(
            rt, current, merged, "", directive, query.get("dryRun") == "All", manager, applied=paths
        )
        return result, warnings, False


def _conflict(conflicts: list[tuple[str, Path]], api_version: str) -> ApiError:
    causes = [
        {"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {api_version}', "field": _render(p)}
        for m, p in conflicts
    ]
    listed = "\n".join(f"- {c['message']}: {c['field']}" for c in causes)
    count = f"{len(causes)} conflict" + ("s" if len(causes) > 1 else "")
    message = f"Apply failed with {count}: " + (
        f"{causes[0]['message']}: {causes[0]['field']}" if len(causes) == 1 else "\n" + listed
    )
    return ApiError(409, "Conflict", message, details={"causes": causes})
