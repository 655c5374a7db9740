"""ReplicaSets make Pods and an emulated kubelet runs them: the part of a rollout that can fail.

The ReplicaSet controller keeps ``spec.replicas`` Pods per ReplicaSet (``<rs>-<5 chars>``, the
template's labels and annotations, a controller ownerReference to the ReplicaSet), removing the
least useful first (pending before running, not ready before ready, newest first), and reports
``status.replicas``, ``fullyLabeledReplicas``, ``readyReplicas``, ``availableReplicas`` (ready for
``minReadySeconds``) and ``observedGeneration`` as kube-controller-manager does.

The kubelet runs the Pods bound to its one node, ``emulated-node``, which the ReplicaSet
controller binds them to as it creates them (no scheduler, no Node object, no resources to fit).
A Pod is ``Pending`` with its containers ``waiting: ContainerCreating``; half of
``pod_ready_seconds`` later each image is pulled from the test's ``ImageRegistry``: if it exists
the container is running (``phase: Running``) and becomes ready after the other half (plus a
readiness probe's ``initialDelaySeconds``, scaled); if not, the container is ``ErrImagePull``,
then ``ImagePullBackOff``, and the pull is retried after the kubelet's back-off (10 s doubling
to 300 s, scaled by ``time_scale``), so an image pushed later still starts the Pod. A Pod that
never pulls its image is never Ready.

Not simulated: probes beyond their initial delay (a started container passes them), liveness and
restarts, init containers (treated as done), crashes, resources and eviction, graceful
termination (a deleted Pod is gone at once), Events, and Pods not bound to ``emulated-node``
(a bare Pod a test creates stays the stored object it wrote).
"""

from __future__ import annotations

import copy
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .images import ImageRegistry, canonical, image_id
from .meta import now
from .rest import Api

PODS, REPLICASETS = "pods", "replicasets.apps"
NODE_NAME = "emulated-node"
HOST_IP = "10.0.0.10"
POD_CIDR = ipaddress.ip_network("10.244.0.0/16")
PULL_BACKOFF_SECONDS, PULL_BACKOFF_MAX_SECONDS = 10.0, 300.0
MANAGER = "kube-controller-manager"

Requeue = Callable[[tuple[str, str, str], float], None]


@dataclass
class Tuning:
    """The simulation's clock: durations from the API (deadlines, back-offs) are multiplied by
    ``time_scale``; ``pod_ready_seconds`` is wall time from a Pod's creation to Ready."""

    time_scale: float = 1.0
    pod_ready_seconds: float = 0.02

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    return next((r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def controller_ref(owner: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_pod_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def is_pod_active(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in (
        "Succeeded",
        "Failed",
    )


def _parse(timestamp: str) -> float:
    """A wall-clock timestamp as a monotonic instant (second precision)."""
    wall = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    return time.monotonic() - (time.time() - wall)


# --- the kubelet --------------------------------------------------------------------------------
@dataclass
class _Container:
    name: str
    image: str
    probe_delay: float
    next_pull: float
    failures: int = 0
    failed_at: float = 0.0
    started: float | None = None
    started_at: str = ""


@dataclass
class _Runtime:
    uid: str
    ip: str
    start_time: str
    containers: list[_Container] = field(default_factory=list)
    ready_since: float | None = None


class Kubelet:
    def __init__(self, api: Api, tuning: Tuning, images: ImageRegistry, requeue: Requeue) -> None:
        self.api, self.tuning, self.images, self._requeue = api, tuning, images, requeue
        self._pods: dict[tuple[str, str], _Runtime] = {}
        self._next_ip = 2

    def ready_since(self, namespace: str, name: str, uid: str) -> float | None:
        runtime = self._pods.get((namespace, name))
        return runtime.ready_since if runtime is not None and runtime.uid == uid else None

    def _runtime(self, pod: dict[str, Any], at: float) -> _Runtime:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        runtime = self._pods.get(key)
        if runtime is None or runtime.uid != meta["uid"]:
            ip = str(POD_CIDR[self._next_ip % POD_CIDR.num_addresses])
            self._next_ip += 1
            first_pull = at + self.tuning.pod_ready_seconds / 2
            containers = [
                _Container(
                    c["name"],
                    str(c.get("image", "")),
                    self.tuning.scaled(float((c.get("readinessProbe") or {}).get("initialDelaySeconds") or 0)),
                    first_pull,
                )
                for c in pod["spec"].get("containers") or []
            ]
            runtime = self._pods[key] = _Runtime(meta["uid"], ip, now(), containers)
        return runtime

    def sync(self, namespace: str, name: str) -> None:
        with self.api.store.lock:
            pod = self.api.store.get(PODS, namespace, name)
            if pod is None:
                self._pods.pop((namespace, name), None)
                return
            if (pod.get("spec") or {}).get("nodeName") != NODE_NAME or pod["metadata"].get("deletionTimestamp"):
                return
            at = time.monotonic()
            runtime = self._runtime(pod, at)
            wake: list[float] = []
            half = self.tuning.pod_ready_seconds / 2
            for c in runtime.containers:
                if c.started is None and at >= c.next_pull:
                    if self.images.pull(c.image):
                        c.started, c.started_at = at, now()
                    else:
                        c.failures += 1
                        c.failed_at = at
                        backoff = min(PULL_BACKOFF_SECONDS * 2 ** (c.failures - 1), PULL_BACKOFF_MAX_SECONDS)
                        c.next_pull = at + self.tuning.scaled(backoff)
                if c.started is None:
                    wake.append(c.next_pull)
                    if c.failures and at < c.failed_at + half:
                        wake.append(c.failed_at + half)
                elif at < c.started + half + c.probe_delay:
                    wake.append(c.started + half + c.probe_delay)
            ready = all(c.started is not None and at >= c.started + half + c.probe_delay for c in runtime.containers)
            if ready and runtime.ready_since is None:
                runtime.ready_since = at
            elif not ready:
                runtime.ready_since = None
            status = self._status(pod, runtime, at, half)
            if status != pod.get("status"):
                new = copy.deepcopy(pod)
                new["status"] = status
                rt = self.api.registry.lookup("", "v1", "pods")
                assert rt is not None
                self.api._manage(rt, pod, new, "kubelet", "status")
                self.api.commit(rt, new)
            if wake:
                self._requeue(("pod", namespace, name), min(wake) - at)

    def _status(self, pod: dict[str, Any], runtime: _Runtime, at: float, half: float) -> dict[str, Any]:
        old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
        statuses, unready = [], []
        for c in runtime.containers:
            ready = c.started is not None and at >= c.started + half + c.probe_delay
            entry: dict[str, Any] = {"name": c.name, "image": c.image, "imageID": "", "lastState": {}}
            if c.started is not None:
                entry.update(
                    state={"running": {"startedAt": c.started_at}},
                    imageID=image_id(c.image),
                    containerID="containerd://" + image_id(runtime.uid + c.name).rsplit(":", 1)[-1],
                    started=True,
                )
            else:
                error = (
                    f'rpc error: code = NotFound desc = failed to pull and unpack image "{canonical(c.image)}": '
                    f'failed to resolve reference "{canonical(c.image)}": {canonical(c.image)}: not found'
                )
                if not c.failures:
                    waiting = {"reason": "ContainerCreating"}
                elif at < c.failed_at + half:
                    waiting = {"reason": "ErrImagePull", "message": error}
                else:
                    waiting = {
                        "reason": "ImagePullBackOff",
                        "message": f'Back-off pulling image "{c.image}": ErrImagePull: {error}',
                    }
                entry.update(state={"waiting": waiting}, started=False)
            entry.update(ready=ready, restartCount=0)
            statuses.append(entry)
            if not ready:
                unready.append(c.name)
        conditions = []
        for ctype, ok in (
            ("PodReadyToStartContainers", True),
            ("Initialized", True),
            ("Ready", not unready),
            ("ContainersReady", not unready),
            ("PodScheduled", True),
        ):
            status = "True" if ok else "False"
            before = old.get(ctype) or {}
            condition: dict[str, Any] = {
                "type": ctype,
                "status": status,
                "lastProbeTime": None,
                "lastTransitionTime": before.get("lastTransitionTime") if before.get("status") == status else now(),
            }
            if not ok:
                condition.update(
                    reason="ContainersNotReady", message=f"containers with unready status: [{' '.join(unready)}]"
                )
            conditions.append(condition)
        running = all(c.started is not None for c in runtime.containers)
        return {
            "phase": "Running" if running else "Pending",
            "conditions": conditions,
            "hostIP": HOST_IP,
            "hostIPs": [{"ip": HOST_IP}],
            "podIP": runtime.ip,
            "podIPs": [{"ip": runtime.ip}],
            "startTime": runtime.start_time,
            "containerStatuses": sorted(statuses, key=lambda s: s["name"]),
            "qosClass": _qos_class(pod),
        }


def _qos_class(pod: dict[str, Any]) -> str:
    resources = [c.get("resources") or {} for c in pod["spec"].get("containers") or []]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        all(k in (r.get("limits") or {}) for k in ("cpu", "memory"))
        and all((r.get("requests") or {}).get(k, v) == v for k, v in (r.get("limits") or {}).items())
        for r in resources
    )
    return "Guaranteed" if guaranteed else "Burstable"


# --- the ReplicaSet controller ------------------------------------------------------------------
class ReplicaSetController:
    def __init__(self, api: Api, tuning: Tuning, kubelet: Kubelet, requeue: Requeue) -> None:
        self.api, self.tuning, self.kubelet, self._requeue = api, tuning, kubelet, requeue

    def pods_of(self, rs: dict[str, Any]) -> list[dict[str, Any]]:
        uid = rs["metadata"]["uid"]
        return [
            p
            for p in self.api.store.list(PODS, rs["metadata"]["namespace"])
            if (controller_of(p) or {}).get("uid") == uid and is_pod_active(p)
        ]

    def sync(self, namespace: str, name: str) -> None:
        with self.api.store.lock:
            rs = self.api.store.get(REPLICASETS, namespace, name)
            if rs is None:
                return
            pods = self.pods_of(rs)
            if not rs["metadata"].get("deletionTimestamp"):
                want = int((rs.get("spec") or {}).get("replicas", 1))
                if len(pods) < want:
                    self._create_pods(rs, want - len(pods))
                elif len(pods) > want:
                    self._delete_pods(pods, len(pods) - want)
                pods = self.pods_of(rs)
            self._update_status(rs, pods)

    def _create_pods(self, rs: dict[str, Any], count: int) -> None:
        rt = self.api.registry.lookup("", "v1", "pods")
        assert rt is not None
        template = rs["spec"].get("template") or {}
        for _ in range(count):
            meta: dict[str, Any] = {
                "generateName": rs["metadata"]["name"] + "-",
                "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                "ownerReferences": [controller_ref(rs, "apps/v1", "ReplicaSet")],
            }
            if (template.get("metadata") or {}).get("annotations"):
                meta["annotations"] = dict(template["metadata"]["annotations"])
            spec = {**copy.deepcopy(template.get("spec") or {}), "nodeName": NODE_NAME}
            self.api.create(
                rt, rs["metadata"]["namespace"], {"metadata": meta, "spec": spec}, {"fieldManager": MANAGER}
            )

    def _delete_pods(self, pods: list[dict[str, Any]], count: int) -> None:
        rt = self.api.registry.lookup("", "v1", "pods")
        assert rt is not None
        newest_first = sorted(
            pods, key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]), reverse=True
        )
        phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}
        ranked = sorted(
            newest_first, key=lambda p: (phase_rank.get((p.get("status") or {}).get("phase", ""), 0), is_pod_ready(p))
        )
        for pod in ranked[:count]:
            meta = pod["metadata"]
            self.api.delete(rt, meta["namespace"], meta["name"], {"preconditions": {"uid": meta["uid"]}})

    def _update_status(self, rs: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        at = time.monotonic()
        template_labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        min_ready = self.tuning.scaled(float(rs["spec"].get("minReadySeconds") or 0))
        ready = available = labelled = 0
        wake: list[float] = []
        for pod in pods:
            labels = pod["metadata"].get("labels") or {}
            labelled += all(labels.get(k) == v for k, v in template_labels.items())
            if not is_pod_ready(pod):
                continue
            ready += 1
            meta = pod["metadata"]
            since = self.kubelet.ready_since(meta["namespace"], meta["name"], meta["uid"])
            if since is None:
                condition = next(c for c in pod["status"]["conditions"] if c.get("type") == "Ready")
                since = _parse(condition.get("lastTransitionTime") or now())
            if min_ready <= 0 or since + min_ready < at:
                available += 1
            else:
                wake.append(since + min_ready)
        status: dict[str, Any] = {"replicas": len(pods)}
        for key, value in (
            ("fullyLabeledReplicas", labelled),
            ("readyReplicas", ready),
            ("availableReplicas", available),
            ("observedGeneration", rs["metadata"].get("generation", 0)),
        ):
            if value:
                status[key] = value
        if status != rs.get("status"):
            new = copy.deepcopy(rs)
            new["status"] = status
            rt = self.api.registry.lookup("apps", "v1", "replicasets")
            assert rt is not None
            self.api._manage(rt, rs, new, MANAGER, "status")
            self.api.commit(rt, new)
        if wake:
            self._requeue(("replicaset", rs["metadata"]["namespace"], rs["metadata"]["name"]), min(wake) - at + 0.001)
