"""`make sandbox` is usable by hand: kubectl, PyGithub and both controllers work against it.

The sandbox runs as its own process, exactly as a person starts it; this test only reads the
``.sandbox/env`` file it writes, then uses kubectl, PyGithub and the two console scripts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from github import Auth, Github

from controller_common import contract
from e2e_support import BIN_DIR, ControllerProcess, wait_until
from shared_data import REPO_ROOT
from world import push_commit

pytestmark = pytest.mark.e2e


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[dict[str, str]]:
    env_dir = tmp_path / "sandbox"
    log = (tmp_path / "sandbox.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--dir", str(env_dir)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "tests")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        env_file = env_dir / "env"
        wait_until(env_file.exists, timeout=30, message="sandbox wrote .sandbox/env")
        exports = dict(line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines() if line)
        assert set(exports) == {"KUBECONFIG", "GITHUB_API_URL", "GITHUB_TOKEN"}
        yield exports
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        log.close()


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(BIN_DIR / "kubectl"), *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def _manifest(kind: str, name: str, spec: dict, annotations: dict | None = None) -> str:
    api = {"Deployment": "apps/v1", "Service": "v1", "VirtualService": "networking.istio.io/v1"}[kind]
    metadata = {"name": name, "namespace": "default", "annotations": annotations or {}}
    return json.dumps({"apiVersion": api, "kind": kind, "metadata": metadata, "spec": spec})


DEPLOYMENT_SPEC = {
    "replicas": 2,
    "selector": {"matchLabels": {"app": "web"}},
    "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "ghcr.io/example/web:2.0"}]},
    },
}
SERVICE_SPEC = {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
VS_SPEC = {"hosts": ["web.default.svc.cluster.local"], "http": [{"route": [{"destination": {"host": "web"}}]}]}


def test_kubectl_crud_on_deployments_services_and_virtual_services(sandbox: dict[str, str]) -> None:
    for kind, spec in (("Deployment", DEPLOYMENT_SPEC), ("Service", SERVICE_SPEC), ("VirtualService", VS_SPEC)):
        plural = {"Deployment": "deployments", "Service": "services", "VirtualService": "virtualservices"}[kind]
        kubectl(sandbox, "create", "-f", "-", stdin=_manifest(kind, "scratch", spec))
        got = json.loads(kubectl(sandbox, "get", plural, "scratch", "-o", "json"))
        assert got["metadata"]["name"] == "scratch"
        kubectl(sandbox, "patch", plural, "scratch", "--type=merge", "-p", '{"metadata":{"labels":{"patched":"yes"}}}')
        got = json.loads(kubectl(sandbox, "get", plural, "scratch", "-o", "json"))
        assert got["metadata"]["labels"]["patched"] == "yes"
        kubectl(sandbox, "delete", plural, "scratch")
        names = kubectl(sandbox, "get", plural, "-o", "name")
        assert "scratch" not in names


def test_controllers_started_by_hand_clone_and_route_a_pull_request(sandbox: dict[str, str], tmp_path: Path) -> None:
    github = Github(
        base_url=sandbox["GITHUB_API_URL"],
        auth=Auth.Token(sandbox["GITHUB_TOKEN"]),
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    repo = github.get_user().create_repo("web")
    annotations = {contract.REPOSITORY_ANNOTATION: repo.full_name}
    kubectl(sandbox, "apply", "-f", "-", stdin=_manifest("Deployment", "web", DEPLOYMENT_SPEC, annotations))
    kubectl(sandbox, "apply", "-f", "-", stdin=_manifest("Service", "web", SERVICE_SPEC))
    kubectl(sandbox, "apply", "-f", "-", stdin=_manifest("VirtualService", "web", VS_SPEC))

    flags = ["--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"]
    env = {**sandbox, "POLL_INTERVAL_SECONDS": "0.3"}
    controllers = [
        ControllerProcess(name, flags, env=env, log_dir=tmp_path) for name in ("replicator", "service-router")
    ]
    try:
        main = repo.get_branch("main").commit.sha
        repo.create_git_ref("refs/heads/feature", main)
        push_commit(repo, "feature")
        number = repo.create_pull(title="feature", head="feature", base="main").number
        clone = f"web-pr{number}"

        def routed() -> bool:
            vs = json.loads(kubectl(sandbox, "get", "virtualservices", "web", "-o", "json"))
            names = [r.get("name") for r in vs["spec"]["http"]]
            return f"service-router--{clone}" in names and clone in kubectl(sandbox, "get", "deployments", "-o", "name")

        wait_until(routed, timeout=40, message="clone and route created by hand-started controllers")
    finally:
        logs = "\n".join(c.logs() for c in controllers)
        codes = [c.stop() for c in controllers]
    assert codes == [0, 0], logs[-3000:]
