"""Structural defaulting of custom resources: the ``default:`` values of a CRD's schema.

kube-apiserver fills in defaults while decoding every create and update (and patch, whose result is
an update), before validation, so the stored object and every rule see them. The Gateway API relies
on it: an HTTPRoute rule without matches gets ``[{path: {type: PathPrefix, value: /}}]``, a
backendRef gets ``kind: Service`` and ``weight: 1``. As in the real server, an absent field takes
a copy of its default, an explicit null of a non-nullable field does too, and defaulted values are
themselves defaulted below. ``metadata`` is never defaulted from the CRD.
"""

from __future__ import annotations

import copy
from typing import Any


def apply_defaults(obj: Any, schema: dict[str, Any] | None, *, root: bool = True) -> None:
    """Fill ``obj`` in place with the defaults of ``schema``."""
    if not isinstance(schema, dict):
        return
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        for name, sub in props.items():
            if root and name == "metadata":
                continue
            if "default" in sub and (name not in obj or (obj[name] is None and not sub.get("nullable"))):
                obj[name] = copy.deepcopy(sub["default"])
        extra = schema.get("additionalProperties")
        for name, value in obj.items():
            sub = props.get(name, extra if isinstance(extra, dict) else None)
            if sub is not None and not (root and name == "metadata"):
                apply_defaults(value, sub, root=False)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            apply_defaults(item, schema["items"], root=False)
