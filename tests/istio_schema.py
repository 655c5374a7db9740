"""Validate Istio objects the project writes or ships against Istio's own CRDs in ``../shared``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from emulators.kube_api.openapi import validate_against_crd_schema


@functools.lru_cache(maxsize=4)
def load_crd_schemas(shared_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Map (apiVersion, kind) to the openAPIV3Schema of every served version of Istio's CRDs."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((shared_dir / "schemas" / "istio").glob("*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = version["schema"]["openAPIV3Schema"]
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def istio_errors(obj: dict[str, Any], shared_dir: Path) -> list[str]:
    """Errors of ``obj`` under Istio's schema for its apiVersion and kind (unknown kind is an error)."""
    schemas = load_crd_schemas(shared_dir)
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    if key not in schemas:
        return [f"no Istio CRD serves {key[0]} {key[1]}"]
    return validate_against_crd_schema(obj, schemas[key])
