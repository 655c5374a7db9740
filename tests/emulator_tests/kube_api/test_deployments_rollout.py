"""Rollouts over ReplicaSets and emulated Pods: revisions, surge limits, failures, history, undo."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from emulators.kube_api import KubeApiServer
from emulators.kube_api.store import Event
from emulators.kube_api.testing import deployment, wait_for

KUBECTL = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "kubectl"
REVISION = "deployment.kubernetes.io/revision"


def create(server: KubeApiServer, body: dict[str, Any]) -> dict[str, Any]:
    return server._create("apps", "v1", "deployments", "default", body)


def update(server: KubeApiServer, name: str, change: Any) -> None:
    rt = server.registry.lookup("apps", "v1", "deployments")
    assert rt is not None
    with server.store.lock:
        current = server.api.get(rt, "default", name)
        change(current)
        server.api.update(rt, "default", name, current, {"fieldManager": "test"})


def set_image(server: KubeApiServer, image: str, name: str = "web") -> None:
    update(server, name, lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image=image))


def get(server: KubeApiServer, name: str = "web") -> dict[str, Any]:
    return next(d for d in server.objects("deployments") if d["metadata"]["name"] == name)


def condition(d: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in (d.get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


def rolled_out(server: KubeApiServer, name: str = "web") -> dict[str, Any] | None:
    """The Deployment once ``kubectl rollout status`` would say "successfully rolled out"."""
    d = get(server, name)
    s = d.get("status") or {}
    n = d["spec"]["replicas"]
    done = s.get("observedGeneration") == d["metadata"]["generation"] and s.get("updatedReplicas", 0) == n
    return d if done and s.get("replicas", 0) == s.get("availableReplicas", 0) == n else None


def replicasets(server: KubeApiServer) -> dict[str, dict[str, Any]]:
    return {rs["metadata"]["name"]: rs for rs in server.objects("replicasets")}


def pods(server: KubeApiServer) -> list[dict[str, Any]]:
    return server.objects("pods")


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions", []))


def waiting_reasons(server: KubeApiServer) -> list[str]:
    """Every waiting reason any Pod's container showed, in the order of the store's history."""
    seen: list[str] = []
    for e in list(server.store._history):
        if e.storage_key == "pods":
            for c in (e.obj.get("status") or {}).get("containerStatuses") or []:
                reason = (c["state"].get("waiting") or {}).get("reason")
                if reason and (not seen or seen[-1] != reason):
                    seen.append(reason)
    return seen


def test_a_deployment_gets_a_revisioned_replicaset_whose_pods_go_pending_then_ready(server: KubeApiServer) -> None:
    d = create(server, deployment(replicas=3))
    done = wait_for(lambda: rolled_out(server))
    [rs] = replicasets(server).values()
    hashed = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{hashed}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": hashed}
    assert rs["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "web",
            "uid": d["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert rs["metadata"]["annotations"][REVISION] == done["metadata"]["annotations"][REVISION] == "1"
    assert rs["status"] == {
        "replicas": 3,
        "fullyLabeledReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "observedGeneration": 1,
    }
    running = pods(server)
    assert len(running) == 3 and all(is_ready(p) and p["status"]["phase"] == "Running" for p in running)
    assert {p["metadata"]["ownerReferences"][0]["uid"] for p in running} == {rs["metadata"]["uid"]}
    status = running[0]["status"]["containerStatuses"][0]
    assert status["ready"] and "running" in status["state"] and status["imageID"].startswith("docker.io/library/nginx@")
    phases = [e.obj.get("status", {}).get("phase") for e in server.store._history if e.storage_key == "pods"]
    assert phases.index("Pending") < phases.index("Running")
    assert condition(done, "Available")["reason"] == "MinimumReplicasAvailable"
    assert condition(done, "Progressing")["message"] == f'ReplicaSet "web-{hashed}" has successfully progressed.'
    reasons = [
        condition(e.obj, "Progressing").get("reason")
        for e in server.store._history
        if e.storage_key == "deployments.apps"
    ]
    assert "NewReplicaSetCreated" in reasons


def test_a_template_change_rolls_within_max_surge_and_max_unavailable(server: KubeApiServer) -> None:
    body = deployment(replicas=4)
    body["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    create(server, body)
    wait_for(lambda: rolled_out(server))
    seen: list[tuple[int, int]] = []

    def record(event: Event) -> None:
        if event.storage_key == "pods":
            current = server.store.list("pods", "default")
            seen.append((len(current), sum(1 for p in current if is_ready(p))))

    server.store.add_listener(record)
    set_image(server, "nginx:2")
    done = wait_for(lambda: (d := rolled_out(server)) and d["metadata"]["generation"] == 2 and d)
    assert max(total for total, _ in seen) == 5  # one surge Pod at a time
    assert min(ready for _, ready in seen) >= 4  # never below the replicas while rolling
    by_revision = {rs["metadata"]["annotations"][REVISION]: rs for rs in replicasets(server).values()}
    assert sorted(by_revision) == ["1", "2"] and by_revision["1"]["spec"]["replicas"] == 0
    assert done["metadata"]["annotations"][REVISION] == "2"
    assert {p["spec"]["containers"][0]["image"] for p in pods(server)} == {"nginx:2"}


def test_a_missing_image_never_gets_ready_and_exceeds_the_progress_deadline(server: KubeApiServer) -> None:
    server.time_scale = 0.01  # the 60 s deadline is 0.6 s, the 10 s pull back-off 0.1 s
    server.images.delete("nginx:404")
    body = deployment(image="nginx:404")
    body["spec"]["progressDeadlineSeconds"] = 60
    create(server, body)
    failed = wait_for(lambda: condition(d := get(server), "Progressing").get("status") == "False" and d)
    [rs] = replicasets(server)
    assert condition(failed, "Progressing")["reason"] == "ProgressDeadlineExceeded"
    assert condition(failed, "Progressing")["message"] == f'ReplicaSet "{rs}" has timed out progressing.'
    assert condition(failed, "Available")["reason"] == "MinimumReplicasUnavailable"
    assert failed["status"]["unavailableReplicas"] == 1 and "availableReplicas" not in failed["status"]
    [pod] = pods(server)
    assert pod["status"]["phase"] == "Pending" and not is_ready(pod)
    wait_for(lambda: "ImagePullBackOff" in waiting_reasons(server))
    assert waiting_reasons(server)[:3] == ["ContainerCreating", "ErrImagePull", "ImagePullBackOff"]
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert "docker.io/library/nginx:404: not found" in waiting["message"]
    assert server.images.pulls.count("nginx:404") >= 2  # the kubelet retries after its back-off


def test_a_failed_rollout_keeps_the_old_pods_serving_and_recovers_when_the_image_appears(
    server: KubeApiServer,
) -> None:
    server.time_scale = 0.01
    body = deployment(replicas=2)
    body["spec"]["progressDeadlineSeconds"] = 50
    create(server, body)
    wait_for(lambda: rolled_out(server))
    server.images.delete_matching(lambda ref: ref.endswith(":broken"))
    set_image(server, "nginx:broken")
    failed = wait_for(lambda: condition(d := get(server), "Progressing").get("status") == "False" and d)
    assert condition(failed, "Available")["status"] == "True"  # the old ReplicaSet still serves
    assert failed["status"]["availableReplicas"] == 2 and failed["status"]["updatedReplicas"] == 1
    assert sum(1 for p in pods(server) if is_ready(p)) == 2
    server.images.push("nginx:broken")  # CI published it late: the next pull succeeds
    done = wait_for(lambda: rolled_out(server), timeout=10)
    assert condition(done, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert {p["spec"]["containers"][0]["image"] for p in pods(server)} == {"nginx:broken"}


def test_min_ready_seconds_delays_availability_after_readiness(server: KubeApiServer) -> None:
    server.time_scale = 0.01
    body = deployment()
    body["spec"]["minReadySeconds"] = 30
    create(server, body)
    wait_for(lambda: rolled_out(server))
    statuses = [e.obj.get("status") or {} for e in server.store._history if e.storage_key == "replicasets.apps"]
    assert any(s.get("readyReplicas") == 1 and not s.get("availableReplicas") for s in statuses)


def test_revision_history_limit_keeps_that_many_old_replicasets(server: KubeApiServer) -> None:
    body = deployment()
    body["spec"]["revisionHistoryLimit"] = 1
    create(server, body)
    for generation, image in enumerate(("nginx:2", "nginx:3", "nginx:4"), start=2):
        wait_for(lambda: rolled_out(server))
        set_image(server, image)
        wait_for(lambda g=generation: (d := rolled_out(server)) and d["metadata"]["generation"] == g)
    wait_for(lambda: len(replicasets(server)) == 2)
    revisions = sorted(rs["metadata"]["annotations"][REVISION] for rs in replicasets(server).values())
    assert revisions == ["3", "4"]


def test_scaling_resizes_the_replicaset_without_a_new_revision(server: KubeApiServer) -> None:
    create(server, deployment(replicas=3))
    wait_for(lambda: rolled_out(server))
    update(server, "web", lambda d: d["spec"].update(replicas=1))
    wait_for(lambda: (d := rolled_out(server)) and d["metadata"]["generation"] == 2)
    [rs] = replicasets(server).values()
    assert rs["spec"]["replicas"] == 1 and len(pods(server)) == 1
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "1"


def test_recreate_removes_every_old_pod_before_creating_new_ones(server: KubeApiServer) -> None:
    body = deployment(replicas=2)
    body["spec"]["strategy"] = {"type": "Recreate"}
    create(server, body)
    wait_for(lambda: rolled_out(server))
    mixed: list[set[str]] = []

    def record(event: Event) -> None:
        if event.storage_key == "pods":
            images = {p["spec"]["containers"][0]["image"] for p in server.store.list("pods", "default")}
            if len(images) > 1:
                mixed.append(images)

    server.store.add_listener(record)
    set_image(server, "nginx:2")
    wait_for(lambda: (d := rolled_out(server)) and d["metadata"]["generation"] == 2)
    assert mixed == []
    assert [p["spec"]["containers"][0]["image"] for p in pods(server)] == ["nginx:2", "nginx:2"]


def test_a_paused_deployment_does_not_roll_out(server: KubeApiServer) -> None:
    create(server, deployment())
    wait_for(lambda: rolled_out(server))
    update(server, "web", lambda d: d["spec"].update(paused=True))
    set_image(server, "nginx:2")
    paused = wait_for(lambda: condition(d := get(server), "Progressing").get("reason") == "DeploymentPaused" and d)
    assert condition(paused, "Progressing")["status"] == "Unknown"
    assert len(replicasets(server)) == 1
    update(server, "web", lambda d: d["spec"].update(paused=False))
    wait_for(lambda: (d := rolled_out(server)) and d["metadata"]["generation"] == 4)
    assert len(replicasets(server)) == 2


def test_deleting_the_deployment_collects_its_replicasets_and_pods(server: KubeApiServer) -> None:
    create(server, deployment(replicas=2))
    wait_for(lambda: rolled_out(server))
    assert len(replicasets(server)) == 1 and len(pods(server)) == 2
    rt = server.registry.lookup("apps", "v1", "deployments")
    assert rt is not None
    server.api.delete(rt, "default", "web", {})
    wait_for(lambda: not replicasets(server) and not pods(server))


def test_a_bare_pod_is_left_as_written(server: KubeApiServer) -> None:
    server._create(
        "",
        "v1",
        "pods",
        "default",
        {"metadata": {"name": "solo"}, "spec": {"containers": [{"name": "a", "image": "x"}]}},
    )
    create(server, deployment())
    wait_for(lambda: rolled_out(server))
    [solo] = [p for p in pods(server) if p["metadata"]["name"] == "solo"]
    [running] = [p for p in pods(server) if p["metadata"]["name"] != "solo"]
    assert "status" not in solo and is_ready(running) and running["spec"]["nodeName"] == "emulated-node"


def kubectl(server: KubeApiServer, tmp_path: Path, *args: str) -> str:
    config = server.write_kubeconfig(tmp_path / "kubeconfig")
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(config), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(not KUBECTL.exists(), reason="the pinned kubectl is not installed")
def test_kubectl_rollout_history_and_undo(server: KubeApiServer, tmp_path: Path) -> None:
    create(server, deployment(replicas=2))
    wait_for(lambda: rolled_out(server))
    set_image(server, "nginx:2")
    wait_for(lambda: (d := rolled_out(server)) and d["metadata"]["generation"] == 2)
    history = kubectl(server, tmp_path, "rollout", "history", "deployment/web")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    assert "nginx:1.27" in kubectl(server, tmp_path, "rollout", "history", "deployment/web", "--revision=1")
    assert "rolled back" in kubectl(server, tmp_path, "rollout", "undo", "deployment/web")
    assert "successfully rolled out" in kubectl(
        server, tmp_path, "rollout", "status", "deployment/web", "--timeout=20s"
    )
    d = get(server)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert d["metadata"]["annotations"][REVISION] == "3"
    by_revision = {rs["metadata"]["annotations"][REVISION]: rs for rs in replicasets(server).values()}
    assert sorted(by_revision) == ["2", "3"]  # the first ReplicaSet is reused under the next revision
    assert by_revision["3"]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    table = kubectl(server, tmp_path, "get", "rs,pods")
    assert "READY   STATUS" in table and "Running" in table
