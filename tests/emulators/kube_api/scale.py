"""The ``scale`` subresource of Deployments (``autoscaling/v1`` Scale), used by ``kubectl scale``.

Reading it shows ``spec.replicas`` and the status' replica count and selector; writing it (PUT or
PATCH) changes only the Deployment's ``spec.replicas``, with the usual resourceVersion precondition.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from . import patch
from .builtin_schema import kind_schema
from .errors import ApiError, bad_request, conflict
from .resources import ResourceType
from .rest import Api


def _selector(deployment: dict[str, Any]) -> str:
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def to_scale(deployment: dict[str, Any]) -> dict[str, Any]:
    meta = deployment["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
        "spec": {"replicas": (deployment.get("spec") or {}).get("replicas", 1)},
        "status": {"replicas": (deployment.get("status") or {}).get("replicas", 0), "selector": _selector(deployment)},
    }


def get(api: Api, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
    return to_scale(api.get(rt, namespace, name))


def update(api: Api, rt: ResourceType, namespace: str, name: str, body: Any, manager: str) -> dict[str, Any]:
    with api.store.lock:
        return _apply(api, rt, namespace, name, body, manager)


def patch_scale(
    api: Api, rt: ResourceType, namespace: str, name: str, raw: bytes, content_type: str, manager: str
) -> dict[str, Any]:
    ctype = content_type.split(";")[0].strip()
    try:
        document = json.loads(raw or b"null")
    except ValueError as exc:
        raise bad_request(f"error decoding patch: {exc}") from None
    with api.store.lock:
        current = get(api, rt, namespace, name)
        if ctype == patch.MERGE:
            result = patch.merge_patch(current, document)
        elif ctype == patch.JSON_PATCH:
            result = patch.json_patch(current, document)
        elif ctype == patch.STRATEGIC:
            result = patch.strategic_merge(current, document, kind_schema("Scale", "autoscaling/v1"))
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format ({ctype})")
        return _apply(api, rt, namespace, name, result, manager)


def _apply(api: Api, rt: ResourceType, namespace: str, name: str, scale: Any, manager: str) -> dict[str, Any]:
    if not isinstance(scale, dict) or not isinstance((scale.get("spec") or {}).get("replicas", 0), int):
        raise bad_request('Scale in version "v1" cannot be handled as a Scale: spec.replicas must be an integer')
    current = api.get(rt, namespace, name)
    wanted_rv = (scale.get("metadata") or {}).get("resourceVersion")
    if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
        raise conflict(rt.plural, rt.group, name)
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if replicas < 0:
        raise ApiError(
            422,
            "Invalid",
            f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
            f"{replicas}: must be greater than or equal to 0",
        )
    desired = copy.deepcopy(current)
    desired["spec"]["replicas"] = replicas
    return to_scale(api.update(rt, namespace, name, desired, {"fieldManager": manager})[0])
