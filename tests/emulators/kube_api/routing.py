"""Turn an HTTP method and path into a Kubernetes request: verb, group, version, resource, names.

This mirrors kube-apiserver's RequestInfoResolver so that the request log and fault injection
speak the same vocabulary as RBAC and audit logs (get/list/watch/create/update/patch/delete).
"""

from __future__ import annotations

from dataclasses import dataclass

_NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass
class RequestInfo:
    method: str
    path: str
    query: dict[str, str]
    is_resource: bool = False
    verb: str = ""
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


def _is_true(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def resolve(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    info = RequestInfo(method=method, path=path, query=query)
    parts = [p for p in path.strip("/").split("/") if p]
    verb_for_method = {
        "POST": "create",
        "GET": "get",
        "HEAD": "get",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete",
    }
    info.verb = verb_for_method.get(method, method.lower())
    if not parts or parts[0] not in ("api", "apis"):
        return info
    if parts[0] == "api":
        if len(parts) < 2:
            return info
        info.group, info.version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 3:
            return info
        info.group, info.version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return info
    info.is_resource = True
    legacy_watch = False
    if rest[0] == "watch":
        legacy_watch, rest = True, rest[1:]
        if not rest:
            info.is_resource = False
            return info
    if rest[0] == "namespaces" and len(rest) > 1:
        info.namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    info.resource = rest[0]
    if len(rest) > 1:
        info.name = rest[1]
    if len(rest) > 2:
        info.subresource = rest[2]
    if info.resource == "namespaces" and info.name:
        info.namespace = info.name
    if info.verb == "get" and not info.name:
        info.verb = "list"
    if info.verb in ("get", "list") and (legacy_watch or _is_true(query.get("watch"))):
        info.verb = "watch"
    if info.verb == "delete" and not info.name:
        info.verb = "deletecollection"
    return info
