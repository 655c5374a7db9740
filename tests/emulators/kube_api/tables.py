"""Server-side printing: ``as=Table`` answers, so ``kubectl get`` prints the familiar columns.

kubectl asks the server to render lists as a ``meta.k8s.io/v1`` Table. We print the columns the
real server prints for the kinds people look at (Deployments, ReplicaSets, Pods, Services,
Namespaces, ConfigMaps, Secrets), a CRD's ``additionalPrinterColumns`` for custom resources, and
NAME/AGE otherwise.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .resources import ResourceType

Cell = Callable[[dict[str, Any]], Any]


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    created = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = max(0, int((datetime.now(UTC) - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _get(obj: Any, path: str) -> Any:
    for part in [p for p in path.strip().lstrip(".").split(".") if p]:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _ports(svc: dict[str, Any]) -> str:
    parts = []
    for p in _get(svc, "spec.ports") or []:
        node = f":{p['nodePort']}" if p.get("nodePort") else ""
        parts.append(f"{p.get('port')}{node}/{p.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def _pod_status(pod: dict[str, Any]) -> str:
    """The STATUS column as kubectl prints it: a waiting container's reason wins over the phase."""
    if _get(pod, "metadata.deletionTimestamp"):
        return "Terminating"
    reason = _get(pod, "status.reason") or _get(pod, "status.phase") or "Pending"
    for c in reversed(_get(pod, "status.containerStatuses") or []):
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            reason = waiting["reason"]
    return str(reason)


def _status(obj: dict[str, Any], field: str) -> int:
    return int(_get(obj, f"status.{field}") or 0)


_BUILTIN: dict[str, list[tuple[str, str, Cell]]] = {
    "deployments": [
        ("Ready", "string", lambda d: f"{_status(d, 'readyReplicas')}/{_get(d, 'spec.replicas') or 0}"),
        ("Up-to-date", "integer", lambda d: _status(d, "updatedReplicas")),
        ("Available", "integer", lambda d: _status(d, "availableReplicas")),
    ],
    "replicasets": [
        ("Desired", "integer", lambda r: _get(r, "spec.replicas") or 0),
        ("Current", "integer", lambda r: _status(r, "replicas")),
        ("Ready", "integer", lambda r: _status(r, "readyReplicas")),
    ],
    "pods": [
        (
            "Ready",
            "string",
            lambda p: (
                f"{sum(1 for c in _get(p, 'status.containerStatuses') or [] if c.get('ready'))}"
                f"/{len(_get(p, 'spec.containers') or [])}"
            ),
        ),
        ("Status", "string", lambda p: _pod_status(p)),
        (
            "Restarts",
            "string",
            lambda p: str(sum(c.get("restartCount", 0) for c in _get(p, "status.containerStatuses") or [])),
        ),
    ],
    "services": [
        ("Type", "string", lambda s: _get(s, "spec.type")),
        ("Cluster-IP", "string", lambda s: _get(s, "spec.clusterIP")),
        ("External-IP", "string", lambda s: ",".join(_get(s, "spec.externalIPs") or []) or "<none>"),
        ("Port(s)", "string", _ports),
    ],
    "namespaces": [("Status", "string", lambda n: _get(n, "status.phase"))],
    "configmaps": [("Data", "integer", lambda c: len(c.get("data") or {}) + len(c.get("binaryData") or {}))],
    "secrets": [("Type", "string", lambda s: s.get("type")), ("Data", "integer", lambda s: len(s.get("data") or {}))],
}


def _render(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return value


def _json_path_cell(path: str, is_date: bool) -> Cell:
    def cell(obj: dict[str, Any]) -> Any:
        value = _get(obj, path)
        return _age(value) if is_date else _render(value)

    return cell


def _columns(rt: ResourceType) -> list[tuple[str, str, Cell]]:
    if rt.builtin:
        return _BUILTIN.get(rt.plural, [])
    columns: list[tuple[str, str, Cell]] = []
    for col in rt.printer_columns:
        columns.append(
            (
                col["name"],
                "string" if col.get("type") == "date" else col.get("type", "string"),
                _json_path_cell(col.get("jsonPath", ""), col.get("type") == "date"),
            )
        )
    return columns


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": copy.deepcopy(obj.get("metadata", {})),
    }


def table(
    rt: ResourceType,
    items: list[dict[str, Any]],
    resource_version: str,
    include: str = "Metadata",
    continue_token: str | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    extra = _columns(rt)
    has_age = any(name == "Age" for name, _, _ in extra)
    definitions = [{"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}]
    definitions += [{"name": n, "type": t, "format": "", "description": "", "priority": 0} for n, t, _ in extra]
    if not has_age:
        definitions.append({"name": "Age", "type": "string", "format": "", "description": "", "priority": 0})
    rows = []
    for o in items:
        cells = [o["metadata"]["name"], *(cell(o) for _, _, cell in extra)]
        if not has_age:
            cells.append(_age(o["metadata"].get("creationTimestamp")))
        rows.append({"cells": cells, "object": _row_object(o, include)})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": definitions,
        "rows": rows,
    }
