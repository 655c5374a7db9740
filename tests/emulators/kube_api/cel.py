"""The few CEL rules (``x-kubernetes-validations``) that Istio's CRDs use, evaluated by pattern.

There is no CEL engine here, but Istio's CRDs repeat a handful of rules (durations of at least
1ms on every timeout, no wildcards in some names, port ranges, URL schemes). A real server
rejects a VirtualService with ``timeout: "5"`` (no unit), so we must too. Rules are recognised by
their exact text; any other rule is skipped, never guessed. Failures are reported as the real
server does: ``<field>: Invalid value: "<schema type>": <rule message>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

_DURATION = re.compile(r"([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go ``time.Duration`` string ("1.5s", "250ms", "1h2m"); ValueError if malformed."""
    if text == "0":
        return 0.0
    if not isinstance(text, str) or not _DURATION.fullmatch(text):
        raise ValueError(f"invalid duration {text!r}")
    total = sum(float(n) * _UNIT[u] for n, u in re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text))
    return -total if text.startswith("-") else total


def _at_least_1ms(value: Any) -> bool:
    try:
        return parse_duration(value) >= 1e-3
    except ValueError:
        return False


RULES: dict[str, Callable[[Any], bool]] = {
    "duration(self) >= duration('1ms')": _at_least_1ms,
    '!self.contains("*")': lambda v: isinstance(v, str) and "*" not in v,
    'self.all(key, !key.contains("*"))': lambda v: isinstance(v, dict) and all("*" not in k for k in v),
    "self.size() == 0": lambda v: len(v) == 0,
    "0 < self && self <= 65535": lambda v: isinstance(v, int) and 0 < v <= 65535,
    'url(self).getScheme() in ["http", "https"]': lambda v: (
        isinstance(v, str) and urlparse(v).scheme in ("http", "https")
    ),
}


def check(schema: dict[str, Any] | None, value: Any, path: str = "") -> list[dict[str, str]]:
    """Field causes for every known rule that ``value`` breaks under ``schema``."""
    if not isinstance(schema, dict) or value is None:
        return []
    causes = []
    for validation in schema.get("x-kubernetes-validations") or []:
        rule = " ".join(str(validation.get("rule", "")).split())
        test = RULES.get(rule)
        if test is None:
            continue
        try:
            ok = test(value)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            causes.append(
                {
                    "type": "FieldValueInvalid",
                    "field": path or "<root>",
                    "value": json.dumps(schema.get("type", "object")),
                    "detail": validation.get("message") or f"failed rule: {rule}",
                }
            )
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            causes.extend(check(sub, child, f"{path}.{key}" if path else key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            causes.extend(check(schema.get("items"), item, f"{path}[{i}]"))
    return causes
