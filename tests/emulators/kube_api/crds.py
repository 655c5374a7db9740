"""CustomResourceDefinitions: turning a CRD object into served resource types.

Creating a CRD is how a real cluster learns a new kind, so it is the only way the emulator learns
one too (``KubeApiServer.apply_crd`` is just a POST). Every served version becomes a
``ResourceType`` carrying that version's ``openAPIV3Schema``; the status the real
apiextensions-apiserver reports (NamesAccepted, Established, acceptedNames, storedVersions) is
filled in at once.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .resources import ResourceType, version_priority_key

BUNDLED_VIRTUAL_SERVICE_CRD = Path(__file__).parent / "crds" / "virtualservice.yaml"
_REPO_ROOT = Path(__file__).resolve().parents[3]
GATEWAY_API_KINDS = ("GatewayClass", "Gateway", "HTTPRoute", "GRPCRoute", "ReferenceGrant")


def gateway_api_crd_paths(shared_dir: str | Path | None = None) -> list[Path]:
    """The Gateway API's standard-channel CRD files in ``shared/schemas/gateway-api`` (``shared_dir``,
    else ``$SHARED_DIR``, else ``../shared`` beside the repository); empty when they are absent."""
    base = Path(shared_dir or os.environ.get("SHARED_DIR") or _REPO_ROOT.parent / "shared")
    return sorted((base / "schemas" / "gateway-api").glob("*.yaml"))


def resource_types(crd: dict[str, Any]) -> tuple[str, list[str], list[ResourceType]]:
    spec = crd["spec"]
    names = spec["names"]
    group = spec["group"]
    served = [v for v in spec.get("versions") or [] if v.get("served", True)]
    served.sort(key=lambda v: version_priority_key(v["name"]))
    types = [
        ResourceType(
            group=group,
            version=v["name"],
            plural=names["plural"],
            singular=names.get("singular") or names["kind"].lower(),
            kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            status_subresource="status" in (v.get("subresources") or {}),
            builtin=False,
            categories=tuple(names.get("categories") or ()),
            schema=(v.get("schema") or {}).get("openAPIV3Schema"),
            storage_version=bool(v.get("storage")),
            printer_columns=tuple(v.get("additionalPrinterColumns") or ()),
        )
        for v in served
    ]
    return group, [v["name"] for v in served], types


def established_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    spec = crd["spec"]
    previous = (crd.get("status") or {}).get("storedVersions") or []
    storage = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
    stored = list(dict.fromkeys([*previous, *storage]))
    return {
        "acceptedNames": dict(spec["names"]),
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
        "storedVersions": stored,
    }


def load_crd_files(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition document in the given (multi-document) YAML files."""
    found: list[dict[str, Any]] = []
    for path in paths:
        resolved = Path(path).resolve()
        found.extend(copy.deepcopy(_parse(resolved, resolved.stat().st_mtime_ns)))
    return found


@functools.lru_cache(maxsize=32)
def _parse(path: Path, mtime_ns: int) -> tuple[dict[str, Any], ...]:
    """Parsing Istio's CRDs takes most of a second: parse each file version once per process."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        docs = yaml.load_all(fh, Loader=loader)
        return tuple(d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition")
