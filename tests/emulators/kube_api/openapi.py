"""Validate a custom resource against its CRD's structural ``openAPIV3Schema``, as kube-apiserver does.

The API server validates custom resources with a structural schema: unknown fields are errors
under strict field validation (unless ``x-kubernetes-preserve-unknown-fields``), integers and
strings are distinct, and ``x-kubernetes-int-or-string`` admits both. We translate that schema into
an equivalent JSON Schema once per CRD version and let ``jsonschema`` do the walking, so the
emulator (and the tests that validate shipped manifests) reject exactly what a real server would.
CEL rules (``x-kubernetes-validations``) are evaluated separately, by ``cel``.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

import jsonschema

_ROOT_FIELDS = {"apiVersion", "kind", "metadata"}


def to_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Translate an OpenAPI v3 structural schema into a JSON Schema (draft 7) with the same verdicts."""
    out = copy.deepcopy(schema)
    _translate(out)
    return out


def _translate(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _translate(item)
        return
    if not isinstance(node, dict):
        return
    for key in ("properties", "patternProperties", "definitions"):
        for child in node.get(key, {}).values():
            _translate(child)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            _translate(node[key])
    for key in ("oneOf", "anyOf", "allOf"):
        if key in node:
            _translate(node[key])

    if node.pop("x-kubernetes-int-or-string", False):
        node.pop("type", None)
        node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    preserve = node.pop("x-kubernetes-preserve-unknown-fields", False)
    node.pop("x-kubernetes-validations", None)
    for key in [k for k in node if k.startswith("x-kubernetes-")]:
        node.pop(key)
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    if node.get("type") == "object" and not preserve and "additionalProperties" not in node:
        # A structural object lists every field it allows: anything else is unknown.
        node["additionalProperties"] = False
    # OpenAPI's "format" values (int32, date-time, ...) are advisory for the API server too.
    node.pop("format", None)


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> jsonschema.Draft7Validator:
    schema = to_json_schema(json.loads(schema_json))
    # apiVersion, kind and metadata are validated by the server itself, never by the CRD schema.
    properties = schema.setdefault("properties", {})
    for field in _ROOT_FIELDS:
        properties.setdefault(field, {})
    return jsonschema.Draft7Validator(schema)


def validate_against_crd_schema(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Return the field errors of ``obj`` under ``schema``, formatted like the API server's causes."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors: list[str] = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path) or "<root>"
        if error.validator == "additionalProperties" and error.validator_value is False:
            extras = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            errors.extend(f'{path}: unknown field "{field}"' for field in extras)
        else:
            errors.append(f"{path}: {error.message}")
    return errors
