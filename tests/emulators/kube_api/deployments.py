"""The deployment controller of kube-controller-manager, closely followed, over simulated Pods.

For each Deployment, ReplicaSets per pod template (``<deployment>-<hash>``, the
``pod-template-hash`` label on the template and in the selector, a controller ownerReference,
``deployment.kubernetes.io/revision`` on both, ``desired-replicas``/``max-replicas`` and the
Deployment's other annotations copied on): a ``RollingUpdate`` scales the new ReplicaSet up and
the old ones down within ``maxSurge``/``maxUnavailable`` (the real fencepost rounding, unhealthy
old replicas first), ``Recreate`` scales old ReplicaSets to 0 and waits for their Pods before the
new one; a change of ``spec.replicas`` alone scales proportionally; a template equal to an old
ReplicaSet's (``kubectl rollout undo``) reuses that ReplicaSet under the next revision
(``revision-history`` keeps the old numbers); old ReplicaSets at 0 beyond
``revisionHistoryLimit`` are deleted once a rollout completes. ``spec.paused`` stops rollouts.

Status is computed as the real ``calculateStatus``/``syncRolloutStatus``: replica counts summed
over the ReplicaSets (zeros omitted, as the API's ``omitempty`` does), ``observedGeneration``,
``Available`` (``MinimumReplicasAvailable``/``MinimumReplicasUnavailable``) and ``Progressing``
(``NewReplicaSetCreated``, ``FoundNewReplicaSet``, ``ReplicaSetUpdated``, ``NewReplicaSetAvailable``,
``DeploymentPaused``/``DeploymentResumed``, and ``False``/``ProgressDeadlineExceeded`` with
``ReplicaSet "<name>" has timed out progressing.`` once no progress was seen for
``progressDeadlineSeconds``, scaled by ``time_scale``). Writes to status never bump
``generation``, as real status updates.

Pods come from ``workloads`` (ReplicaSet controller and kubelet) and can fail to start when the
test's ``ImageRegistry`` lacks their image, which is how rollouts fail here. Not simulated:
adopting or releasing ReplicaSets by selector (only controller references count), hash
collisions (``collisionCount``), the ``ReplicaFailure`` condition, Events, and the deprecated
``rollbackTo``. The controller reacts ``delay_seconds`` after a Deployment changes, at once to
its ReplicaSets and Pods.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Hashable
from typing import Any

from .images import ImageRegistry
from .meta import now
from .rest import Api
from .rollout import (
    DESIRED_REPLICAS_ANNOTATION,
    HASH_LABEL,
    KEY,
    MAX_REPLICAS_ANNOTATION,
    MAX_REVISION_HISTORY_CHARS,
    NOT_COPIED,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    calculate_status,
    condition_of,
    count,
    equal_ignoring_hash,
    fenceposts,
    has_deadline,
    is_complete,
    is_progressing,
    max_unavailable,
    new_condition,
    remove_condition,
    replicas_of,
    revision_of,
    set_condition,
    template_hash,
)
from .store import Event
from .timers import KeyedTimers
from .workloads import (
    MANAGER,
    PODS,
    REPLICASETS,
    Kubelet,
    ReplicaSetController,
    Tuning,
    _parse,
    controller_of,
    controller_ref,
)


# --- the controller -----------------------------------------------------------------------------
class DeploymentController:
    """Deployments, ReplicaSets and Pods on one work-queue thread (see the module docstring)."""

    def __init__(
        self,
        api: Api,
        delay_seconds: float,
        *,
        images: ImageRegistry | None = None,
        tuning: Tuning | None = None,
        errors: list[str] | None = None,
    ) -> None:
        self.api = api
        self.delay = delay_seconds
        self.images = images or ImageRegistry()
        self.tuning = tuning or Tuning()
        self._timers = KeyedTimers("kube-emulator-controllers", self._sync_key, errors if errors is not None else [])
        self.kubelet = Kubelet(api, self.tuning, self.images, self._timers.add)
        self.replicasets = ReplicaSetController(api, self.tuning, self.kubelet, self._timers.add)
        self._progress_at: dict[str, tuple[str, float]] = {}  # uid -> (Progressing lastUpdateTime, monotonic)
        api.store.add_listener(self._on_event)

    def start(self) -> None:
        self._timers.start()

    def stop(self) -> None:
        self._timers.stop()

    # --- routing store events to keys -------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        obj, ns = event.obj, event.namespace
        if event.storage_key == KEY and event.type != "DELETED":
            status = obj.get("status") or {}
            changed = status.get("observedGeneration") != obj["metadata"].get("generation")
            self._timers.add(("deployment", ns, obj["metadata"]["name"]), self.delay if changed else 0.0)
        elif event.storage_key in (REPLICASETS, PODS):
            kind = "replicaset" if event.storage_key == REPLICASETS else "pod"
            if event.type != "DELETED":
                self._timers.add((kind, ns, obj["metadata"]["name"]))
            owner = controller_of(obj)
            if owner and owner.get("kind") == ("Deployment" if kind == "replicaset" else "ReplicaSet"):
                self._timers.add(("deployment" if kind == "replicaset" else "replicaset", ns, owner["name"]))

    def _sync_key(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        kind, namespace, name = key
        if kind == "deployment":
            self.sync(namespace, name)
        elif kind == "replicaset":
            self.replicasets.sync(namespace, name)
        else:
            self.kubelet.sync(namespace, name)

    # --- one Deployment ---------------------------------------------------------------------------
    def sync(self, namespace: str, name: str) -> None:
        with self.api.store.lock:
            d = self.api.store.get(KEY, namespace, name)
            if d is None or d["metadata"].get("deletionTimestamp"):
                return
            d = copy.deepcopy(d)
            rss = [
                rs
                for rs in self.api.store.list(REPLICASETS, namespace)
                if (controller_of(rs) or {}).get("uid") == d["metadata"]["uid"]
            ]
            paused = bool(d["spec"].get("paused"))
            self._paused_condition(d, paused)
            if paused or self._is_scaling_event(d, rss):
                new_rs, old_rss = self._new_and_old(d, rss, create=False)
                self._scale(d, new_rs, old_rss)
                if paused:
                    self._cleanup(d, old_rss)
                fresh_new = self._fresh([new_rs])[0] if new_rs else None
                self._write_status(
                    d, calculate_status(d, self._fresh(old_rss) + ([fresh_new] if fresh_new else []), fresh_new)
                )
            elif (d["spec"].get("strategy") or {}).get("type") == "Recreate":
                self._recreate(d, rss)
            else:
                self._rolling(d, rss)

    def _fresh(self, rss: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = (self.api.store.get(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"]) for rs in rss)
        return [rs for rs in found if rs is not None]

    def _rolling(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> None:
        new_rs, old_rss = self._new_and_old(d, rss, create=True)
        assert new_rs is not None
        if not self._reconcile_new(d, [*old_rss, new_rs], new_rs):
            new_rs = self._fresh([new_rs])[0]
            if not self._reconcile_old(d, old_rss, new_rs) and is_complete(d, d.get("status") or {}):
                self._cleanup(d, old_rss)
        self._sync_rollout_status(d, self._fresh(old_rss), self._fresh([new_rs])[0])

    def _recreate(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> None:
        new_rs, old_rss = self._new_and_old(d, rss, create=False)
        scaled = False
        for rs in old_rss:
            if replicas_of(rs):
                self._scale_rs(d, rs, 0)
                scaled = True
        old_rss = self._fresh(old_rss)
        old_running = any(count([rs], "replicas") for rs in old_rss)
        if not scaled and not old_running:
            if new_rs is None:
                new_rs, old_rss = self._new_and_old(d, self._fresh(rss), create=True)
                assert new_rs is not None
            if replicas_of(new_rs) != replicas_of(d):
                self._scale_rs(d, new_rs, replicas_of(d))
            if is_complete(d, d.get("status") or {}):
                self._cleanup(d, old_rss)
        self._sync_rollout_status(d, old_rss, self._fresh([new_rs])[0] if new_rs else None)

    def _new_and_old(
        self, d: dict[str, Any], rss: list[dict[str, Any]], *, create: bool
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """``getAllReplicaSetsAndSyncRevision``: find (or create) the new ReplicaSet, give it the next revision."""
        template = d["spec"]["template"]
        rss = self._fresh(rss)
        matching = sorted(
            (rs for rs in rss if equal_ignoring_hash(rs["spec"].get("template") or {}, template)),
            key=lambda rs: rs["metadata"].get("creationTimestamp", ""),
        )
        existing = matching[0] if matching else None
        old = [rs for rs in rss if rs is not existing]
        revision = str(max((revision_of(rs) for rs in old), default=0) + 1)
        rt = self.api.registry.lookup("apps", "v1", "replicasets")
        assert rt is not None
        if existing is not None:
            updated = copy.deepcopy(existing)
            changed = self._set_annotations(d, updated, revision, exists=True)
            if updated["spec"].get("minReadySeconds", 0) != d["spec"].get("minReadySeconds", 0):
                updated["spec"]["minReadySeconds"] = d["spec"].get("minReadySeconds", 0)
                changed = True
            if changed:
                existing = self.api.update(
                    rt, d["metadata"]["namespace"], existing["metadata"]["name"], updated, {"fieldManager": MANAGER}
                )[0]
            status = d.setdefault("status", {})
            if has_deadline(d) and condition_of(status, "Progressing") is None:
                self._set_progressing(
                    d,
                    status,
                    new_condition(
                        "Progressing",
                        "True",
                        "FoundNewReplicaSet",
                        f'Found new replica set "{existing["metadata"]["name"]}"',
                    ),
                )
            self._set_deployment_revision(d, (existing["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION))
            return existing, old
        if not create:
            return None, old
        hashed = template_hash(template)
        new_template = copy.deepcopy(template)
        new_template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = hashed
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = hashed
        rs: dict[str, Any] = {
            "metadata": {
                "name": f"{d['metadata']['name']}-{hashed}",
                "namespace": d["metadata"]["namespace"],
                "labels": dict(new_template["metadata"]["labels"]),
                "ownerReferences": [controller_ref(d, "apps/v1", "Deployment")],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                "selector": selector,
                "template": new_template,
            },
        }
        rs["spec"]["replicas"] = self._new_rs_replicas(d, [*old, rs], rs)
        self._set_annotations(d, rs, revision, exists=False)
        created = self.api.create(rt, d["metadata"]["namespace"], rs, {"fieldManager": MANAGER})[0]
        if has_deadline(d):
            message = f'Created new replica set "{created["metadata"]["name"]}"'
            condition = new_condition("Progressing", "True", "NewReplicaSetCreated", message)
            self._set_progressing(d, d.setdefault("status", {}), condition)
        self._set_deployment_revision(d, revision)
        return created, old

    def _set_annotations(self, d: dict[str, Any], rs: dict[str, Any], revision: str, *, exists: bool) -> bool:
        """``SetNewReplicaSetAnnotations``: copy the Deployment's, raise the revision, keep the old ones."""
        annotations = rs["metadata"].setdefault("annotations", {})
        before = dict(annotations)
        for k, v in (d["metadata"].get("annotations") or {}).items():
            if k not in NOT_COPIED:
                annotations[k] = v
        old = annotations.get(REVISION_ANNOTATION)
        old_number = int(old) if old and old.isdigit() else 0
        if old_number < int(revision):
            annotations[REVISION_ANNOTATION] = revision
            if old is not None:
                history = [r for r in annotations.get(REVISION_HISTORY_ANNOTATION, "").split(",") if r] + [old]
                while len(",".join(history)) > MAX_REVISION_HISTORY_CHARS:
                    history.pop(0)
                annotations[REVISION_HISTORY_ANNOTATION] = ",".join(history)
        if not exists:
            self._set_replicas_annotations(d, rs)
        return annotations != before

    def _set_replicas_annotations(self, d: dict[str, Any], rs: dict[str, Any]) -> bool:
        annotations = rs["metadata"].setdefault("annotations", {})
        wanted = {
            DESIRED_REPLICAS_ANNOTATION: str(replicas_of(d)),
            MAX_REPLICAS_ANNOTATION: str(replicas_of(d) + fenceposts(d)[0]),
        }
        changed = any(annotations.get(k) != v for k, v in wanted.items())
        annotations.update(wanted)
        return changed

    def _set_deployment_revision(self, d: dict[str, Any], revision: str | None) -> None:
        if revision:
            d["metadata"].setdefault("annotations", {})[REVISION_ANNOTATION] = revision

    def _new_rs_replicas(self, d: dict[str, Any], all_rss: list[dict[str, Any]], new_rs: dict[str, Any]) -> int:
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            return replicas_of(d)
        max_total = replicas_of(d) + fenceposts(d)[0]
        current = sum(replicas_of(rs) for rs in all_rss)
        if current >= max_total:
            return replicas_of(new_rs)
        return replicas_of(new_rs) + min(max_total - current, replicas_of(d) - replicas_of(new_rs))

    def _scale_rs(self, d: dict[str, Any], rs: dict[str, Any], replicas: int) -> bool:
        fresh = self._fresh([rs])
        if not fresh:
            return False
        rs = fresh[0]
        updated = copy.deepcopy(rs)
        annotations_changed = self._set_replicas_annotations(d, updated)
        if replicas_of(rs) == replicas and not annotations_changed:
            return False
        updated["spec"]["replicas"] = replicas
        rt = self.api.registry.lookup("apps", "v1", "replicasets")
        assert rt is not None
        self.api.update(rt, rs["metadata"]["namespace"], rs["metadata"]["name"], updated, {"fieldManager": MANAGER})
        return replicas_of(rs) != replicas

    def _reconcile_new(self, d: dict[str, Any], all_rss: list[dict[str, Any]], new_rs: dict[str, Any]) -> bool:
        if replicas_of(new_rs) == replicas_of(d):
            return False
        if replicas_of(new_rs) > replicas_of(d):
            return self._scale_rs(d, new_rs, replicas_of(d))
        return self._scale_rs(d, new_rs, self._new_rs_replicas(d, all_rss, new_rs))

    def _reconcile_old(self, d: dict[str, Any], old_rss: list[dict[str, Any]], new_rs: dict[str, Any]) -> bool:
        old_rss = self._fresh(old_rss)
        if not sum(replicas_of(rs) for rs in old_rss):
            return False
        all_pods = sum(replicas_of(rs) for rs in [*old_rss, new_rs])
        min_available = replicas_of(d) - max_unavailable(d)
        new_unavailable = replicas_of(new_rs) - count([new_rs], "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        by_age = sorted(old_rss, key=lambda rs: rs["metadata"].get("creationTimestamp", ""))
        cleaned = 0
        for rs in by_age:  # unhealthy replicas first: they would block the rollout
            if cleaned >= max_scaled_down:
                break
            unhealthy = replicas_of(rs) - count([rs], "availableReplicas")
            if replicas_of(rs) == 0 or unhealthy <= 0:
                continue
            step = min(max_scaled_down - cleaned, unhealthy)
            self._scale_rs(d, rs, replicas_of(rs) - step)
            cleaned += step
        by_age = self._fresh(by_age)
        available = count([*by_age, new_rs], "availableReplicas")
        scaled = 0
        if available > min_available:
            budget = available - min_available
            for rs in by_age:
                if scaled >= budget:
                    break
                if replicas_of(rs) == 0:
                    continue
                step = min(replicas_of(rs), budget - scaled)
                self._scale_rs(d, rs, replicas_of(rs) - step)
                scaled += step
        return cleaned + scaled > 0

    def _cleanup(self, d: dict[str, Any], old_rss: list[dict[str, Any]]) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        alive = sorted(
            (rs for rs in self._fresh(old_rss) if not rs["metadata"].get("deletionTimestamp")),
            key=lambda rs: (revision_of(rs), rs["metadata"].get("creationTimestamp", "")),
        )
        rt = self.api.registry.lookup("apps", "v1", "replicasets")
        assert rt is not None
        for rs in alive[: max(0, len(alive) - int(limit))]:
            status = rs.get("status") or {}
            if (
                status.get("replicas")
                or replicas_of(rs)
                or rs["metadata"].get("generation", 0) > status.get("observedGeneration", 0)
            ):
                continue
            meta = rs["metadata"]
            self.api.delete(rt, meta["namespace"], meta["name"], {"preconditions": {"uid": meta["uid"]}})

    def _is_scaling_event(self, d: dict[str, Any], rss: list[dict[str, Any]]) -> bool:
        new_rs, old_rss = self._new_and_old(copy.deepcopy(d), rss, create=False)
        for rs in [r for r in old_rss + ([new_rs] if new_rs else []) if replicas_of(r) > 0]:
            desired = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS_ANNOTATION)
            if desired is not None and desired != str(replicas_of(d)):
                return True
        return False

    def _scale(self, d: dict[str, Any], new_rs: dict[str, Any] | None, old_rss: list[dict[str, Any]]) -> None:
        """``scale``: one active ReplicaSet takes the whole count; otherwise proportionally to their sizes."""
        everything = old_rss + ([new_rs] if new_rs else [])
        active = [rs for rs in everything if replicas_of(rs) > 0]
        if len(active) <= 1:
            newest = max(old_rss, key=lambda r: r["metadata"].get("creationTimestamp", ""), default=None)
            target = active[0] if active else new_rs or newest
            if target is not None:
                self._scale_rs(d, target, replicas_of(d))
            return
        n = replicas_of(d)
        if new_rs is not None and replicas_of(new_rs) == n and count([new_rs], "availableReplicas") == n:
            for rs in old_rss:
                if replicas_of(rs):
                    self._scale_rs(d, rs, 0)
            return
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            return
        surge = fenceposts(d)[0]
        allowed = n + surge if n > 0 else 0
        to_add = allowed - sum(replicas_of(rs) for rs in active)
        # larger first; among equals newer first when scaling up, older first when scaling down
        active.sort(key=lambda rs: rs["metadata"].get("creationTimestamp", ""), reverse=to_add > 0)
        active.sort(key=lambda rs: -replicas_of(rs))
        sizes, added = {}, 0
        for rs in active:
            proportion = 0
            if to_add and to_add != added:
                if n == 0:
                    fraction = -replicas_of(rs)
                else:
                    before = int((rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS_ANNOTATION) or 0)
                    before = before or int((d.get("status") or {}).get("replicas") or 0)
                    fraction = round(replicas_of(rs) * (n + surge) / before) - replicas_of(rs) if before else 0
                allowed_left = to_add - added
                proportion = min(fraction, allowed_left) if to_add > 0 else max(fraction, allowed_left)
            sizes[rs["metadata"]["name"]] = replicas_of(rs) + proportion
            added += proportion
        for i, rs in enumerate(active):
            size = sizes[rs["metadata"]["name"]]
            if i == 0 and to_add:
                size = max(0, size + to_add - added)
            self._scale_rs(d, rs, size)

    # --- conditions and status ----------------------------------------------------------------------
    def _paused_condition(self, d: dict[str, Any], paused: bool) -> None:
        if not has_deadline(d):
            return
        status = d.setdefault("status", {})
        cond = condition_of(status, "Progressing")
        if cond and cond.get("reason") == "ProgressDeadlineExceeded":
            return
        marked = cond is not None and cond.get("reason") == "DeploymentPaused"
        if paused and not marked:
            condition = new_condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
            self._set_progressing(d, status, condition)
        elif not paused and marked:
            condition = new_condition("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed")
            self._set_progressing(d, status, condition)

    def _set_progressing(self, d: dict[str, Any], status: dict[str, Any], condition: dict[str, Any]) -> None:
        """Set the Progressing condition and, if it took, remember precisely when (for the deadline)."""
        set_condition(status, condition)
        if condition_of(status, "Progressing") is condition:
            self._progress_at[d["metadata"]["uid"]] = (condition["lastUpdateTime"], time.monotonic())

    def _progress_time(self, d: dict[str, Any], condition: dict[str, Any]) -> float:
        """When ``lastUpdateTime`` was set, precisely if we set it (timestamps have whole seconds)."""
        known = self._progress_at.get(d["metadata"]["uid"])
        if known and known[0] == condition.get("lastUpdateTime"):
            return known[1]
        return _parse(condition.get("lastUpdateTime") or now())

    def _sync_rollout_status(
        self, d: dict[str, Any], old_rss: list[dict[str, Any]], new_rs: dict[str, Any] | None
    ) -> None:
        all_rss = old_rss + ([new_rs] if new_rs else [])
        status = calculate_status(d, all_rss, new_rs)
        if not has_deadline(d):
            remove_condition(status, "Progressing")
        current = condition_of(d.get("status") or {}, "Progressing")
        complete_before = (
            status.get("replicas", 0) == status.get("updatedReplicas", 0)
            and current is not None
            and current.get("reason") == "NewReplicaSetAvailable"
        )
        rs_name = new_rs["metadata"]["name"] if new_rs else None
        subject = f'ReplicaSet "{rs_name}"' if rs_name else f'Deployment "{d["metadata"]["name"]}"'
        if has_deadline(d) and not complete_before:
            if is_complete(d, status):
                message = f"{subject} has successfully progressed."
                self._set_progressing(
                    d, status, new_condition("Progressing", "True", "NewReplicaSetAvailable", message)
                )
            elif is_progressing(d, status):
                condition = new_condition("Progressing", "True", "ReplicaSetUpdated", f"{subject} is progressing.")
                if current is not None:
                    if current.get("status") == "True":
                        condition["lastTransitionTime"] = current["lastTransitionTime"]
                    remove_condition(status, "Progressing")
                self._set_progressing(d, status, condition)
            elif self._timed_out(d, status):
                message = f"{subject} has timed out progressing."
                self._set_progressing(
                    d, status, new_condition("Progressing", "False", "ProgressDeadlineExceeded", message)
                )
        self._write_status(d, status)
        self._requeue_stuck(d, status)

    def _timed_out(self, d: dict[str, Any], status: dict[str, Any]) -> bool:
        condition = condition_of(status, "Progressing")
        if condition is None or condition.get("reason") == "NewReplicaSetAvailable":
            return False
        if condition.get("reason") == "ProgressDeadlineExceeded":
            return True
        deadline = self.tuning.scaled(float(d["spec"]["progressDeadlineSeconds"]))
        return self._progress_time(d, condition) + deadline < time.monotonic()

    def _requeue_stuck(self, d: dict[str, Any], status: dict[str, Any]) -> None:
        condition = condition_of(status, "Progressing")
        if (
            not has_deadline(d)
            or condition is None
            or condition.get("reason") in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded")
            or is_complete(d, status)
        ):
            return
        deadline = self.tuning.scaled(float(d["spec"]["progressDeadlineSeconds"]))
        after = self._progress_time(d, condition) + deadline - time.monotonic()
        self._timers.add(("deployment", d["metadata"]["namespace"], d["metadata"]["name"]), max(0.0, after) + 0.001)

    def _write_status(self, d: dict[str, Any], status: dict[str, Any]) -> None:
        """A status write (the revision annotation rides along, as through the real status strategy)."""
        rt = self.api.registry.lookup("apps", "v1", "deployments")
        assert rt is not None
        current = self.api.store.get(KEY, d["metadata"]["namespace"], d["metadata"]["name"])
        if current is None or current["metadata"]["uid"] != d["metadata"]["uid"]:
            return
        revision = (d["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION)
        current_annotations = current["metadata"].get("annotations") or {}
        if status == current.get("status") and current_annotations.get(REVISION_ANNOTATION) == revision:
            return
        new = copy.deepcopy(current)
        new["status"] = status
        if revision:
            new["metadata"].setdefault("annotations", {})[REVISION_ANNOTATION] = revision
        self.api._manage(rt, current, new, MANAGER, "status")
        self.api.commit(rt, new)
