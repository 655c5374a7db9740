"""Deletion semantics of the generic registry: preconditions, propagation policy, finalizers.

A DELETE either removes the object at once (no finalizers) or marks it with ``deletionTimestamp``
and keeps it until the last finalizer is gone; ``propagationPolicy`` Orphan and Foreground add the
``orphan`` / ``foregroundDeletion`` finalizers that the garbage collector (``gc``) later honours.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .errors import ApiError, conflict, success_status
from .meta import now, same
from .resources import ResourceType

if TYPE_CHECKING:
    from .rest import Api

RETURNS_DELETED_OBJECT = {"services"}  # their registries answer DELETE with the object, not a Status


def delete(api: Api, rt: ResourceType, namespace: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
    with api.store.lock:
        old = api._existing(rt, namespace, name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise conflict(
                rt.plural,
                rt.group,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {old['metadata']['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise conflict(
                rt.plural,
                rt.group,
                name,
                "Precondition failed: ResourceVersion in precondition: "
                f"{pre['resourceVersion']}, ResourceVersion in object meta: {old['metadata']['resourceVersion']}",
            )
        policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else "Background")
        if policy not in ("Orphan", "Background", "Foreground"):
            raise ApiError(
                422,
                "Invalid",
                f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"',
            )
        new = copy.deepcopy(old)
        finalizers = list(new["metadata"].get("finalizers") or [])
        system = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}.get(policy)
        if system and system not in finalizers and rt.plural != "events":
            finalizers.append(system)
        if options.get("dryRun") == ["All"] or options.get("dryRun") == "All":
            return api.out(rt, old)
        if finalizers or rt.plural == "namespaces":
            if finalizers:
                new["metadata"]["finalizers"] = finalizers
            new["metadata"].setdefault("deletionTimestamp", now())
            new["metadata"].setdefault("deletionGracePeriodSeconds", 0)
            if rt.plural == "namespaces":
                new.setdefault("status", {})["phase"] = "Terminating"
            if same(new, old):
                return api.out(rt, old)
            return api.out(rt, api.commit(rt, new))
        final = api.store.remove(rt.storage_key, old["metadata"].get("namespace", ""), name)
        assert final is not None
        api._after_delete(rt, final)
        if rt.builtin and rt.plural not in RETURNS_DELETED_OBJECT:
            return success_status(name, rt.group, rt.plural, final["metadata"]["uid"])
        return api.out(rt, final)


def delete_collection(
    api: Api, rt: ResourceType, namespace: str | None, query: dict[str, str], options: dict[str, Any]
) -> dict[str, Any]:
    listed = api.list(rt, namespace, query)
    for item in listed["items"]:
        try:
            api.delete(rt, item["metadata"].get("namespace", ""), item["metadata"]["name"], options)
        except ApiError as exc:
            if exc.code != 404:
                raise
    return api.list(rt, namespace, query)


# --- CRD side effects --------------------------------------------------------------------------
