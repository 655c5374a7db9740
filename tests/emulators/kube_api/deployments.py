"""A minimal deployment controller: Deployments report themselves rolled out and available.

There are no nodes or pods here, so "rolled out" is immediate: shortly after a Deployment is
created or its spec changes (``delay_seconds``), its status gets ``observedGeneration`` and all
replica counts equal to ``spec.replicas`` with the ``Available`` and ``Progressing`` conditions
that kube-controller-manager would set once the new ReplicaSet is ready. Status writes bump
``resourceVersion`` (a MODIFIED event) but never ``generation``, as real status updates.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import json
import threading
import time
from typing import Any

from .meta import now
from .rest import Api
from .store import Event

KEY = "deployments.apps"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Any) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:10])


def desired_status(deployment: dict[str, Any], timestamp: str) -> dict[str, Any]:
    spec = deployment.get("spec") or {}
    old = deployment.get("status") or {}
    n = int(spec.get("replicas", 1))
    status: dict[str, Any] = {"observedGeneration": deployment["metadata"].get("generation", 1)}
    if n:
        status.update(replicas=n, updatedReplicas=n, readyReplicas=n, availableReplicas=n)
    rs_name = f"{deployment['metadata']['name']}-{template_hash(spec.get('template'))}"
    previous = {c.get("type"): c for c in old.get("conditions") or []}
    conditions = []
    for ctype, reason, message in (
        ("Available", "MinimumReplicasAvailable", "Deployment has minimum availability."),
        ("Progressing", "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.'),
    ):
        before = previous.get(ctype) or {}
        unchanged = (
            before.get("status") == "True" and before.get("reason") == reason and before.get("message") == message
        )
        conditions.append(
            {
                "type": ctype,
                "status": "True",
                "lastUpdateTime": before.get("lastUpdateTime") if unchanged else timestamp,
                "lastTransitionTime": before.get("lastTransitionTime") if before.get("status") == "True" else timestamp,
                "reason": reason,
                "message": message,
            }
        )
    status["conditions"] = conditions
    return status


class DeploymentController:
    def __init__(self, api: Api, delay_seconds: float) -> None:
        self.api = api
        self.delay = delay_seconds
        self._queue: list[tuple[float, str, str]] = []
        self._revisions: dict[str, tuple[str, int]] = {}  # uid -> (template hash, revision)
        self._cond = threading.Condition()
        self._stopped = True
        self._thread: threading.Thread | None = None
        api.store.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        if event.storage_key != KEY or event.type == "DELETED":
            return
        meta = event.obj["metadata"]
        if meta.get("deletionTimestamp"):
            return
        status = event.obj.get("status") or {}
        if status.get("observedGeneration") == meta.get("generation") and status.get("conditions"):
            return
        with self._cond:
            heapq.heappush(self._queue, (time.monotonic() + self.delay, meta["namespace"], meta["name"]))
            self._cond.notify()

    def start(self) -> None:
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="kube-emulator-deployments", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._queue or self._queue[0][0] > time.monotonic()):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(timeout=timeout)
                if self._stopped:
                    return
                _, namespace, name = heapq.heappop(self._queue)
            self.sync(namespace, name)

    def sync(self, namespace: str, name: str) -> None:
        rt = self.api.registry.lookup("apps", "v1", "deployments")
        assert rt is not None
        with self.api.store.lock:
            current = self.api.store.get(KEY, namespace, name)
            if current is None or current["metadata"].get("deletionTimestamp"):
                return
            status = desired_status(current, now())
            revision = self._revision(current)
            annotations = current["metadata"].get("annotations") or {}
            if status == current.get("status") and annotations.get(REVISION_ANNOTATION) == revision:
                return
            new = copy.deepcopy(current)
            new["status"] = status
            new["metadata"].setdefault("annotations", {})[REVISION_ANNOTATION] = revision
            self.api._manage(rt, current, new, "kube-controller-manager", "status")
            self.api.commit(rt, new)

    def _revision(self, deployment: dict[str, Any]) -> str:
        """Like ReplicaSet revisions: a new pod template gets the next number, the same one keeps it."""
        uid = deployment["metadata"]["uid"]
        template = template_hash((deployment.get("spec") or {}).get("template"))
        seen_hash, number = self._revisions.get(uid, ("", 0))
        if template != seen_hash:
            number += 1
            self._revisions[uid] = (template, number)
        return str(number)
