"""Validate Gateway API objects the router writes against the Gateway API's own CRDs in ``../shared``.

The standard channel (v1.6.1) lives under ``schemas/gateway-api``; like :mod:`istio_schema`, only
the openAPIV3Schema is checked here (CEL rules are the emulator's to enforce).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml

from emulators.kube_api.openapi import validate_against_crd_schema


def gateway_api_crd_paths(shared_dir: Path) -> list[Path]:
    return sorted((shared_dir / "schemas" / "gateway-api").glob("*.yaml"))


@functools.lru_cache(maxsize=4)
def load_crd_schemas(shared_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Map (apiVersion, kind) to the openAPIV3Schema of every served version of the Gateway API's CRDs."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in gateway_api_crd_paths(shared_dir):
        for crd in yaml.load_all(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def gateway_api_errors(obj: dict[str, Any], shared_dir: Path) -> list[str]:
    """Errors of ``obj`` under the Gateway API schema for its apiVersion and kind (unknown kind is an error)."""
    schemas = load_crd_schemas(shared_dir)
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    if key not in schemas:
        return [f"no Gateway API CRD serves {key[0]} {key[1]}"]
    # The CRD's metadata is a bare ``type: object``; the server checks it as ObjectMeta: name a DNS
    # subdomain (at most 253 characters), label values at most 63.
    errors = validate_against_crd_schema({k: v for k, v in obj.items() if k != "metadata"}, schemas[key])
    metadata = obj.get("metadata") or {}
    if not _DNS_SUBDOMAIN.fullmatch(str(metadata.get("name", ""))) or len(str(metadata.get("name"))) > 253:
        errors.append(f"metadata.name: Invalid value: {metadata.get('name')!r}")
    errors.extend(
        f"metadata.labels: Invalid value: {v!r}" for v in (metadata.get("labels") or {}).values() if len(str(v)) > 63
    )
    return errors


_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
