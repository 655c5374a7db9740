"""The real OpenAPI schemas of built-in kinds, as shipped by ``kubernetes-validate``.

Two users: strict validation of built-in objects (unknown fields, wrong types, required fields),
and strategic merge patch, which takes its list merge keys and strategies
(``x-kubernetes-patch-merge-key`` / ``x-kubernetes-patch-strategy``) from the same schemas, so
the emulator merges containers, ports, env, volumes and conditions exactly as kube-apiserver does.
Validators are built once per kind and cached.
"""

from __future__ import annotations

import functools
import json
import threading
from importlib import resources
from typing import Any

import jsonschema
import referencing

SCHEMA_DIR = "v1.33.0-local-strict"
_lock = threading.Lock()


def _read(name: str) -> Any:
    ref = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema", SCHEMA_DIR, name)
    return json.loads(ref.read_text())


@functools.cache
def _definitions() -> dict[str, Any]:
    return _read("_definitions.json")


def _file_name(kind: str, api_version: str) -> str:
    group, _, version = api_version.rpartition("/")
    prefix = group.split(".")[0] + "-" if group else ""
    return f"{kind.lower()}-{prefix}{version}.json"


@functools.cache
def kind_schema(kind: str, api_version: str) -> dict[str, Any] | None:
    try:
        return _read(_file_name(kind, api_version))
    except FileNotFoundError:
        return None


@functools.cache
def _validator(kind: str, api_version: str) -> jsonschema.Validator | None:
    schema = kind_schema(kind, api_version)
    if schema is None:
        return None
    registry: referencing.Registry = referencing.Registry()
    registry = referencing.Resource.from_contents(schema) @ registry
    registry = referencing.Resource.from_contents(_definitions()) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def schema_errors(obj: dict[str, Any]) -> list[jsonschema.ValidationError]:
    """Every schema violation of a built-in object (empty when its kind has no schema)."""
    with _lock:  # building the validator is not thread-safe; validating is cheap enough to share
        validator = _validator(obj.get("kind", ""), obj.get("apiVersion", ""))
        if validator is None:
            return []
        return sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))


def resolve(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """Follow ``$ref`` (merging sibling keys such as the patch strategy)."""
    if not schema:
        return None
    ref = schema.get("$ref")
    if not ref:
        return schema
    name = ref.rsplit("/", 1)[-1]
    target = _definitions()["$defs"].get(name, {})
    merged = dict(resolve(target) or {})
    merged.update({k: v for k, v in schema.items() if k != "$ref"})
    return merged


def child(schema: dict[str, Any] | None, key: str | None) -> dict[str, Any] | None:
    """The schema of a property (``key``) or of list items (``key`` None)."""
    schema = resolve(schema)
    if not schema:
        return None
    if key is None:
        return resolve(schema.get("items"))
    props = schema.get("properties") or {}
    if key in props:
        return resolve(props[key])
    extra = schema.get("additionalProperties")
    return resolve(extra) if isinstance(extra, dict) else None


@functools.cache
def object_meta_fields() -> frozenset[str]:
    """The fields of ObjectMeta: what ``metadata`` of any object, custom resources too, may hold."""
    meta = _definitions()["$defs"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
    return frozenset(meta["properties"])
