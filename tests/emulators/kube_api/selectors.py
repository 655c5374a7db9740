"""Label and field selectors, parsed with kube-apiserver's syntax and its errors.

``labelSelector``: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a)``, ``k``, ``!k``.
``fieldSelector``: ``path=v``, ``path==v``, ``path!=v`` over the fields each resource allows
(``metadata.name`` and ``metadata.namespace`` everywhere); unknown fields are a 400, as real.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _check_key(key: str) -> str:
    if not _KEY.match(key) or len(key.split("/")[-1]) > 63:
        raise bad_request(f'unable to parse requirement: invalid label key "{key}"')
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _VALUE.match(value):
        raise bad_request(f'unable to parse requirement: invalid label value: "{value}"')
    return value


def parse_label_selector(text: str | None) -> Predicate:
    if not text:
        return lambda labels: True
    reqs: list[Predicate] = []
    for part in _split_top(text):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s*\(([^)]*)\)", part)
        if m:
            key, op = _check_key(m.group(1)), m.group(2)
            values = {_check_value(v.strip()) for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                reqs.append(lambda lb, k=key, vs=values: k in lb and lb[k] in vs)
            else:
                reqs.append(lambda lb, k=key, vs=values: k not in lb or lb[k] not in vs)
            continue
        m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)", part)
        if m:
            key, op, value = _check_key(m.group(1)), m.group(2), _check_value(m.group(3))
            if op == "!=":
                reqs.append(lambda lb, k=key, v=value: lb.get(k) != v)
            else:
                reqs.append(lambda lb, k=key, v=value: k in lb and lb[k] == v)
            continue
        m = re.fullmatch(r"!\s*(\S+)", part)
        if m:
            key = _check_key(m.group(1))
            reqs.append(lambda lb, k=key: k not in lb)
            continue
        if re.fullmatch(r"\S+", part):
            key = _check_key(part)
            reqs.append(lambda lb, k=key: k in lb)
            continue
        raise bad_request(f"unable to parse requirement: found '{part}', expected: identifier")
    return lambda labels: all(r(labels) for r in reqs)


_EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)
EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "events": _EVENT_FIELDS,
    "secrets": ("type",),
    "namespaces": ("status.phase",),
    "services": ("spec.clusterIP", "spec.type"),
}


def _field_value(obj: dict[str, Any], path: str) -> str:
    if path == "source":
        return str((obj.get("source") or {}).get("component", ""))
    cur: Any = obj
    for seg in path.split("."):
        cur = cur.get(seg) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def parse_field_selector(text: str | None, plural: str) -> Predicate:
    """A predicate over whole objects; unsupported fields raise 400 like the real server."""
    if not text:
        return lambda obj: True
    allowed = ("metadata.name", "metadata.namespace", *EXTRA_FIELDS.get(plural, ()))
    reqs: list[Predicate] = []
    for part in _split_top(text):
        m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(.*)", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        path, op, value = m.group(1), m.group(2), m.group(3).strip()
        if path not in allowed:
            raise bad_request(f"field label not supported: {path}")
        if op == "!=":
            reqs.append(lambda o, p=path, v=value: _field_value(o, p) != v)
        else:
            reqs.append(lambda o, p=path, v=value: _field_value(o, p) == v)
    return lambda obj: all(r(obj) for r in reqs)


def object_matches(obj: dict[str, Any], labels: Predicate, fields: Predicate) -> bool:
    return labels((obj.get("metadata") or {}).get("labels") or {}) and fields(obj)
