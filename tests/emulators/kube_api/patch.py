"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

Strategic merge patch follows apimachinery's rules with the merge keys and strategies of the real
schemas (see ``builtin_schema``): lists with a patch merge key are merged by that key, primitive
lists with strategy ``merge`` are unioned, other lists are replaced; ``$patch: delete|replace|merge``,
``$deleteFromPrimitiveList/<field>``, ``$setElementOrder/<field>`` and ``$retainKeys`` directives are
honoured. Custom resources have no such metadata, hence the real server's 415 for them.
"""

from __future__ import annotations

import copy
from typing import Any

from . import builtin_schema
from .errors import ApiError, bad_request

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- RFC 6902 --------------------------------------------------------------------------------
def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str], path: str) -> tuple[Any, str]:
    cur = doc
    for tok in tokens[:-1]:
        if isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list) and tok.isdigit() and int(tok) < len(cur):
            cur = cur[int(tok)]
        else:
            raise _json_patch_error(f'doc is missing path: "{path}": missing value')
    return cur, tokens[-1]


def _json_patch_error(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens, path)
    try:
        return parent[int(last)] if isinstance(parent, list) else parent[last]
    except (KeyError, IndexError, ValueError):
        raise _json_patch_error(f'doc is missing path: "{path}": missing value') from None


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, path)
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise _json_patch_error(f'add operation does not apply: doc is missing path: "{path}"')
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise _json_patch_error(f'add operation does not apply: doc is missing path: "{path}"')
    return doc


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    parent, last = _parent(doc, tokens, path)
    try:
        if isinstance(parent, list):
            del parent[int(last)]
        else:
            del parent[last]
    except (KeyError, IndexError, ValueError, TypeError):
        raise _json_patch_error(f'remove operation does not apply: doc is missing path: "{path}"') from None
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid JSON patch operation {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc = _add(_remove(doc, path), path, copy.deepcopy(op.get("value")))
        elif kind == "move":
            value = _get(doc, op["from"])
            doc = _add(_remove(doc, op["from"]), path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise _json_patch_error(f"testing value {path} failed: test failed")
        else:
            raise bad_request(f"Unexpected kind: {kind}")
    return doc


# --- strategic merge patch --------------------------------------------------------------------
def strategic_merge(target: dict[str, Any], patch: dict[str, Any], schema: dict[str, Any] | None) -> Any:
    if not isinstance(patch, dict):
        raise bad_request("the body of the request must be a JSON object for a strategic merge patch")
    return _merge_map(copy.deepcopy(target) if isinstance(target, dict) else {}, patch, schema)


def _strategy(schema: dict[str, Any] | None) -> tuple[str, str | None]:
    if not schema:
        return "", None
    return schema.get("x-kubernetes-patch-strategy", ""), schema.get("x-kubernetes-patch-merge-key")


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: dict[str, Any] | None) -> Any:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(original.get(field), list):
                original[field] = [x for x in original[field] if x not in value]
            continue
        sub = builtin_schema.child(schema, key)
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict) and isinstance(original.get(key), dict):
            merged = _merge_map(original[key], value, sub)
            if merged is None:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, dict):
            merged = _merge_map({}, value, sub)
            if merged is not None:
                original[key] = merged
        elif isinstance(value, list):
            original[key] = _merge_list(original.get(key), value, sub)
        else:
            original[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        for key in list(original):
            if key not in retain:
                del original[key]
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") and isinstance(original.get(key.split("/", 1)[1]), list):
            _apply_order(
                original, key.split("/", 1)[1], value, _strategy(builtin_schema.child(schema, key.split("/", 1)[1]))[1]
            )
    return original


def _apply_order(obj: dict[str, Any], field: str, order: list[Any], merge_key: str | None) -> None:
    def ident(item: Any) -> Any:
        return item.get(merge_key) if merge_key and isinstance(item, dict) else item

    wanted = [ident(x) for x in order]
    items = obj[field]
    ranked = sorted(
        range(len(items)),
        key=lambda i: (wanted.index(ident(items[i])) if ident(items[i]) in wanted else len(wanted), i),
    )
    obj[field] = [items[i] for i in ranked]


def _merge_list(original: Any, patch: list[Any], schema: dict[str, Any] | None) -> list[Any]:
    strategy, merge_key = _strategy(schema)
    if "merge" not in strategy.split(",") or not isinstance(original, list):
        return [
            {k: v for k, v in p.items() if k != "$patch"} if isinstance(p, dict) else copy.deepcopy(p)
            for p in patch
            if not (isinstance(p, dict) and p.get("$patch") == "delete")
        ]
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    result = copy.deepcopy(original)
    if merge_key is None:  # a set of primitives
        for p in patch:
            if p not in result:
                result.append(copy.deepcopy(p))
        return result
    item_schema = builtin_schema.child(schema, None)
    for p in patch:
        if not isinstance(p, dict):
            raise bad_request(f"unable to find api field in struct for the patch element {p!r}")
        key = p.get(merge_key)
        index = next((i for i, o in enumerate(result) if isinstance(o, dict) and o.get(merge_key) == key), None)
        if p.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(_merge_map({}, p, item_schema))
        else:
            result[index] = _merge_map(result[index], p, item_schema)
    return result
