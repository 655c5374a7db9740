"""Label and field selectors, parsed with kube-apiserver's syntax and its errors.

``labelSelector``: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a)``, ``k``, ``!k``.
``fieldSelector``: ``path=v``, ``path==v``, ``path!=v`` over the fields each resource allows
(``metadata.name`` and ``metadata.namespace`` everywhere); unknown fields are a 400, as real.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Requirement:
    """One clause of a selector: ``key op values`` (op: =, !=, in, notin, exists, !exists)."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        if self.op in ("!=", "notin"):
            return not present or labels[self.key] not in self.values
        return present if self.op == "exists" else not present


def parse_label_selector(text: str | None) -> Predicate:
    reqs: list[Requirement] = []
    for part in _split_top(text or ""):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s*\(([^)]*)\)", part)
        if m:
            values = frozenset(_check_value(v.strip()) for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(_check_key(m.group(1)), m.group(2), values))
            continue
        m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)", part)
        if m:
            op = "!=" if m.group(2) == "!=" else "="
            reqs.append(Requirement(_check_key(m.group(1)), op, frozenset([_check_value(m.group(3))])))
            continue
        m = re.fullmatch(r"!\s*(\S+)", part)
        if m:
            reqs.append(Requirement(_check_key(m.group(1)), "!exists"))
            continue
        if re.fullmatch(r"\S+", part):
            reqs.append(Requirement(_check_key(part), "exists"))
            continue
        raise bad_request(f"unable to parse requirement: found '{part}', expected: identifier")
    return lambda labels: all(r.matches(labels) for r in reqs)


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
    reqs: list[tuple[str, bool, str]] = []
    for part in _split_top(text):
        m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(.*)", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        path, op, value = m.group(1), m.group(2), m.group(3).strip()
        if path not in allowed:
            raise bad_request(f"field label not supported: {path}")
        reqs.append((path, op != "!=", value))
    return lambda obj: all((_field_value(obj, path) == value) is equal for path, equal, value in reqs)


def object_matches(obj: dict[str, Any], labels: Predicate, fields: Predicate) -> bool:
    return labels((obj.get("metadata") or {}).get("labels") or {}) and fields(obj)
