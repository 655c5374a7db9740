"""The kinds the emulator serves: built-in resources plus those registered by CRDs.

One ``ResourceType`` per (group, version, plural) that is served. Objects are stored once per
(group, plural) — the ``storage_key`` — whatever version they were written in, exactly as
kube-apiserver keeps one storage per group-resource and converts on the way out (for CRDs with
``conversion: None`` converting only rewrites ``apiVersion``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status_subresource: bool = False
    builtin: bool = True
    categories: tuple[str, ...] = ()
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)
    storage_version: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return self.kind + "List"


BUILTINS: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",), status_subresource=True),
    ResourceType(
        "", "v1", "services", "service", "Service", True, ("svc",), status_subresource=True, categories=("all",)
    ),
    ResourceType("", "v1", "events", "event", "Event", True, ("ev",)),
    # Pods of ReplicaSets run on the emulated kubelet (``workloads``); a bare Pod is only stored
    ResourceType("", "v1", "pods", "pod", "Pod", True, ("po",), status_subresource=True, categories=("all",)),
    ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
    ResourceType("", "v1", "secrets", "secret", "Secret", True),
    ResourceType("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",)),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        True,
        ("deploy",),
        status_subresource=True,
        categories=("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        True,
        ("rs",),
        status_subresource=True,
        categories=("all",),
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
    # stored and validated only (the manifests ship them); nothing enforces RBAC or disruption budgets yet
    ResourceType(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        True,
        ("pdb",),
        status_subresource=True,
    ),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", False),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", False
    ),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", True),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        False,
        ("crd", "crds"),
        status_subresource=True,
        categories=("api-extensions",),
    ),
)


class Registry:
    """Thread-safe lookup of served resource types; CRDs add and remove entries at runtime."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        # group -> versions in priority order (the first is the preferred version)
        self._group_versions: dict[str, list[str]] = {}
        for rt in BUILTINS:
            self._add(rt)

    def _add(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt
        versions = self._group_versions.setdefault(rt.group, [])
        if rt.version not in versions:
            versions.append(rt.version)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, plural))

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def group_versions(self) -> dict[str, list[str]]:
        with self._lock:
            return {g: list(v) for g, v in self._group_versions.items()}

    def by_storage_key(self, key: str) -> list[ResourceType]:
        with self._lock:
            return [rt for rt in self._types.values() if rt.storage_key == key]

    def storage_keys_for(self, plural: str) -> list[str]:
        """Resolve ``deployments`` or ``deployments.apps`` to storage keys (for test helpers)."""
        with self._lock:
            keys = {rt.storage_key for rt in self._types.values() if plural in (rt.plural, rt.storage_key)}
        return sorted(keys)

    def register_crd(self, group: str, versions: list[str], types: list[ResourceType]) -> None:
        """Replace whatever this CRD served before with ``types`` (ordered by version priority)."""
        with self._lock:
            self._remove_locked(types[0].storage_key if types else "")
            for rt in types:
                self._types[(rt.group, rt.version, rt.plural)] = rt
            existing = self._group_versions.setdefault(group, [])
            for v in versions:
                if v not in existing:
                    existing.append(v)
            existing.sort(key=version_priority_key)

    def unregister(self, storage_key: str) -> None:
        with self._lock:
            self._remove_locked(storage_key)

    def _remove_locked(self, storage_key: str) -> None:
        for key, rt in list(self._types.items()):
            if rt.storage_key == storage_key:
                del self._types[key]
        served = {(rt.group, rt.version) for rt in self._types.values()}
        for group, versions in list(self._group_versions.items()):
            versions[:] = [v for v in versions if (group, v) in served]
            if not versions:
                del self._group_versions[group]


def version_priority_key(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version priority: GA > beta > alpha, higher numbers first, then others by name."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, "")
