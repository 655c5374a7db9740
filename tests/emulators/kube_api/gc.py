"""Garbage collection through ownerReferences, finalizer-driven deletion, namespace cleanup.

kube-controller-manager's garbage collector, reduced to what is observable: after an owner is
gone its dependents are deleted (background), or have their reference removed if another owner
still lives; an owner deleted with ``propagationPolicy=Foreground`` carries the
``foregroundDeletion`` finalizer until its dependents are gone; with ``Orphan`` the ``orphan``
finalizer is held until the dependents' references to it are removed. Owners are matched by uid
in the dependent's namespace (or cluster-scoped), as the real collector does. A terminating
namespace is emptied and then removed, as the namespace controller does. Runs in its own thread,
woken by store events, like the real controller reacting to its informers.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from typing import Any

from .errors import ApiError
from .resources import ResourceType
from .rest import Api
from .store import Event


class GarbageCollector:
    def __init__(self, api: Api) -> None:
        self.api = api
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        api.store.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kube-emulator-gc", daemon=True)
        self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.sweep()

    # --- one pass --------------------------------------------------------------------------
    def _everything(self) -> list[tuple[ResourceType, dict[str, Any]]]:
        found: list[tuple[ResourceType, dict[str, Any]]] = []
        for key in self.api.store.storage_keys():
            types = self.api.registry.by_storage_key(key)
            if not types:
                continue
            rt = sorted(types, key=lambda t: not t.storage_version)[0]
            found.extend((rt, o) for o in self.api.store.list(key))
        return found

    def _delete(self, rt: ResourceType, obj: dict[str, Any], policy: str) -> None:
        meta = obj["metadata"]
        with contextlib.suppress(ApiError):  # already gone or replaced: nothing left to collect
            self.api.delete(
                rt,
                meta.get("namespace", ""),
                meta["name"],
                {"propagationPolicy": policy, "preconditions": {"uid": meta["uid"]}},
            )

    def _commit(self, rt: ResourceType, new: dict[str, Any]) -> None:
        self.api.commit(rt, new)

    def sweep(self) -> None:
        with self.api.store.lock:
            everything = self._everything()
            by_uid = {(o["metadata"].get("namespace", ""), o["metadata"]["uid"]): (rt, o) for rt, o in everything}

            def owner_of(obj: dict[str, Any], ref: dict[str, Any]) -> Any:
                ns = obj["metadata"].get("namespace", "")
                return by_uid.get((ns, ref.get("uid"))) or by_uid.get(("", ref.get("uid")))

            def dependents(owner: dict[str, Any]) -> list[tuple[ResourceType, dict[str, Any]]]:
                uid, ns = owner["metadata"]["uid"], owner["metadata"].get("namespace", "")
                return [
                    (rt, o)
                    for rt, o in everything
                    if (not ns or o["metadata"].get("namespace", "") == ns)
                    and any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])
                ]

            for rt, obj in everything:
                meta = obj["metadata"]
                if not meta.get("deletionTimestamp"):
                    continue
                finalizers = meta.get("finalizers") or []
                if rt.plural == "namespaces":
                    self._finish_namespace(obj, everything)
                elif "orphan" in finalizers:
                    for drt, dep in dependents(obj):
                        new = copy.deepcopy(dep)
                        new["metadata"]["ownerReferences"] = [
                            r for r in dep["metadata"]["ownerReferences"] if r.get("uid") != meta["uid"]
                        ]
                        if not new["metadata"]["ownerReferences"]:
                            del new["metadata"]["ownerReferences"]
                        self._commit(drt, new)
                    self._drop_finalizer(rt, obj, "orphan")
                elif "foregroundDeletion" in finalizers:
                    deps = dependents(obj)
                    if not deps:
                        self._drop_finalizer(rt, obj, "foregroundDeletion")
                    for drt, dep in deps:
                        if not dep["metadata"].get("deletionTimestamp"):
                            self._delete(drt, dep, "Foreground")

            for rt, obj in everything:
                refs = obj["metadata"].get("ownerReferences") or []
                if (
                    not refs
                    or self.api.store.get(rt.storage_key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                    is not obj
                ):
                    continue
                dangling = [r for r in refs if owner_of(obj, r) is None]
                if not dangling:
                    continue
                if len(dangling) == len(refs):
                    if not obj["metadata"].get("deletionTimestamp"):
                        self._delete(rt, obj, "Background")
                else:
                    new = copy.deepcopy(obj)
                    new["metadata"]["ownerReferences"] = [r for r in refs if r not in dangling]
                    self._commit(rt, new)

    def _drop_finalizer(self, rt: ResourceType, obj: dict[str, Any], finalizer: str) -> None:
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != finalizer]
        if not new["metadata"]["finalizers"]:
            del new["metadata"]["finalizers"]
        self._commit(rt, new)

    def _finish_namespace(self, ns_obj: dict[str, Any], everything: list[tuple[ResourceType, dict[str, Any]]]) -> None:
        name = ns_obj["metadata"]["name"]
        content = [(rt, o) for rt, o in everything if rt.namespaced and o["metadata"].get("namespace") == name]
        for rt, obj in content:
            if not obj["metadata"].get("deletionTimestamp"):
                self._delete(rt, obj, "Background")
        if not content and not ns_obj["metadata"].get("finalizers"):
            self.api.store.remove("namespaces", "", name)
