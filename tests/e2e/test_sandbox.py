"""`make sandbox` is usable by hand: the README's blocks run against it as written.

The sandbox runs as its own process, exactly as a person starts it; these tests only read the
``.sandbox/env`` file it writes, then run the commands of the README's "Try it by hand" and
"Install on a cluster" blocks with the pinned kubectl, the console scripts and
``tests/sandbox_pr.py`` (what ``make sandbox-pr`` runs).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller_common import contract
from e2e_support import BIN_DIR, ControllerProcess, wait_until
from emulators.kube_api import protobuf
from shared_data import REPO_ROOT
from world import free_port

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
        assert set(exports) == {
            "KUBECONFIG",
            "GITHUB_API_URL",
            "GITHUB_TOKEN",
            "GITHUB_WEBHOOK_SECRET",
            "REPLICATOR_WEBHOOK_ADDRESS",
        }
        yield {**exports, "SANDBOX_ENV_FILE": str(env_file)}
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        log.close()


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(BIN_DIR / "kubectl"), *args],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
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


def readme_block(heading: str) -> list[str]:
    """The commands of the first ``sh`` block under ``heading``: continuation lines joined, and
    comments and blank lines dropped."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index(heading) :]
    block = section[section.index("```sh\n") + 6 :]
    block = block[: block.index("```")].replace("\\\n", " ")
    return [line.strip() for line in block.splitlines() if shlex.split(line, comments=True)]


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def counter_total(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def noisy_lines(log: str) -> list[str]:
    """Log lines a person would read as trouble: not JSON, a warning or worse, a failed reconcile."""
    noisy = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            noisy.append(line)
            continue
        if entry.get("level") not in ("debug", "info") or entry.get("result") == "error":
            noisy.append(line)
    return noisy


def reconcile_id(line: str) -> str | None:
    try:
        return str(json.loads(line)["reconcile_id"])
    except (ValueError, KeyError, TypeError):
        return None


class HandSession:
    """Runs the README's "Try it by hand" lines the way a shell would, one at a time, so the test
    can wait for what each step promises before the next."""

    def __init__(self, sandbox: dict[str, str], log_dir: Path) -> None:
        self.env = {**sandbox, "PWD": str(REPO_ROOT)}
        self.log_dir = log_dir
        self.controllers: dict[str, ControllerProcess] = {}
        self.metrics_ports: dict[str, int] = {}
        self.outputs: list[str] = []

    def run(self, line: str) -> str:
        words = [self._expand(w) for w in shlex.split(line, comments=True)]
        if words[0] == "source":
            return ""  # the fixture read .sandbox/env
        if words[0] == "export":
            name, value = words[1].split("=", 1)
            self.env[name] = value
            return ""
        if words[-1] == "&":
            self._start(words)
            return ""
        if words[:2] == ["make", "sandbox-pr"]:
            pr_args = shlex.split(words[2].removeprefix("PR="))
            command = [sys.executable, "-m", "sandbox_pr", "--env", self.env["SANDBOX_ENV_FILE"], *pr_args]
            return self._check(command, {"PYTHONPATH": str(REPO_ROOT / "tests")})
        assert words[0] == "kubectl", f"the test does not know how to run: {line}"
        return self._check([str(BIN_DIR / "kubectl"), *words[1:]], {})

    def _expand(self, word: str) -> str:
        env = {**os.environ, **self.env}
        return re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: env[m.group(1) or m.group(2)], word)

    def _start(self, words: list[str]) -> None:
        name = words[0]
        args = words[1 : words.index(">")] if ">" in words else words[1:-1]
        for flag in ("--metrics-bind-address", "--health-probe-bind-address"):
            port = free_port()  # the README's fixed ports may be taken on a shared machine
            args[args.index(flag) + 1] = f"127.0.0.1:{port}"
            if flag == "--metrics-bind-address":
                self.metrics_ports[name] = port
        self.controllers[name] = ControllerProcess(name, args, env=self.env, log_dir=self.log_dir)

    def _check(self, command: list[str], extra_env: dict[str, str]) -> str:
        env = {**os.environ, **self.env, **extra_env}
        result = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{shlex.join(command)}: {result.stdout}{result.stderr}"
        self.outputs.append(result.stdout)
        return result.stdout

    def stop(self) -> dict[str, str]:
        logs = {name: c.logs() for name, c in self.controllers.items()}
        codes = {name: c.stop() for name, c in self.controllers.items()}
        assert codes == {"replicator": 0, "service-router": 0}, logs
        return logs


def test_readme_try_it_by_hand_runs_as_written_and_the_happy_path_is_quiet(
    sandbox: dict[str, str], tmp_path: Path
) -> None:
    """Every line of the block works; the PR's clone and route appear (through the webhook), follow
    a push and go on close; neither controller logs a warning or error or counts a reconcile error."""
    namespace, clone = "hello-example", "hello-pr1"
    session = HandSession(sandbox, tmp_path)

    def state() -> tuple[str | None, list[str]]:
        deployments = json.loads(kubectl(session.env, "-n", namespace, "get", "deployments", "-o", "json"))
        head = next(
            (
                d["metadata"]["annotations"].get(contract.CLONE_HEAD_SHA_ANNOTATION)
                for d in deployments["items"]
                if d["metadata"]["name"] == clone
            ),
            None,
        )
        vs = json.loads(kubectl(session.env, "-n", namespace, "get", "virtualservices", "hello", "-o", "json"))
        return head, [str(r.get("name")) for r in vs["spec"]["http"]]

    try:
        for line in readme_block("## Try it by hand"):
            out = session.run(line)
            if "sandbox-pr PR=open" in line:
                head = re.search(r"head ([0-9a-f]{7})", out)
                assert head, out
                wait_until(
                    lambda: (s := state())[0] and s[1] == [f"service-router--{clone}", "default"],
                    timeout=30,
                    message="clone and route of PR #1",
                )
                assert (state()[0] or "").startswith(head.group(1))
            elif 'PR="push 1"' in line:
                pushed = re.search(r"pushed ([0-9a-f]{7})", out)
                assert pushed, out
                sha = pushed.group(1)
                wait_until(lambda sha=sha: (state()[0] or "").startswith(sha), timeout=30, message="push followed")
            elif 'PR="close 1"' in line:
                wait_until(lambda: state() == (None, ["default"]), timeout=30, message="clone and route removed")
            elif line.startswith("kubectl service-router routes"):
                assert f"{clone}.{namespace}" in out, out
        # the PR was found through the webhook, not by a poll
        replicator_metrics = metrics(session.metrics_ports["replicator"])
        webhook = counter_total(replicator_metrics, "replicator_webhook_deliveries_total", event="pull_request")
        assert webhook >= 2, replicator_metrics
        router_metrics = metrics(session.metrics_ports["service-router"])
    finally:
        logs = session.stop()
    assert noisy_lines(logs["replicator"]) == [], "the replicator was noisy on the happy path"
    assert counter_total(replicator_metrics, "replicator_reconcile_total", result="error") == 0
    assert counter_total(replicator_metrics, "replicator_origin_errors_total") == 0
    assert counter_total(router_metrics, "service_router_reconcile_total", result="success") > 0
    assert noisy_lines(logs["service-router"]) == [], "the service-router was noisy on the happy path"
    assert counter_total(router_metrics, "service_router_reconcile_total", result="error") == 0


MONITORING_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.monitoring.coreos.com}}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {{kind: {kind}, listKind: {kind}List, plural: {plural}, singular: {singular}}}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
"""


@pytest.mark.skipif(
    protobuf.proto_dir() is None,
    reason="the Install steps' typed kubectl commands (create secret, create namespace) send protobuf, which the "
    "emulator serves only from ../shared/schemas/kubernetes-proto, absent in a plain clone",
)
def test_readme_install_block_passes_on_an_empty_cluster(sandbox: dict[str, str], tmp_path: Path) -> None:
    """The Install steps, in order, with the pinned kubectl: the server dry run passes (it failed
    with 15 namespace-not-found errors while it came before the Namespaces existed), then the real
    apply, the Secret, both rollouts and the example. What the sandbox lacks of a real cluster with
    Istio and the Prometheus Operator is set up first: an ``istio-system`` Namespace and stand-in
    ServiceMonitor/PrometheusRule CRDs that accept any spec (their real schemas are not checked)."""
    kubectl(sandbox, "create", "namespace", "istio-system")
    for kind, plural in (("ServiceMonitor", "servicemonitors"), ("PrometheusRule", "prometheusrules")):
        crd = MONITORING_CRD.format(kind=kind, plural=plural, singular=kind.lower())
        kubectl(sandbox, "apply", "-f", "-", stdin=crd)
    (tmp_path / "github-token").write_text("a-token\n")
    (tmp_path / "manifests").symlink_to(REPO_ROOT / "manifests")
    env = {**os.environ, **sandbox, "PATH": f"{BIN_DIR}{os.pathsep}{os.environ['PATH']}"}
    for line in readme_block("## Install on a cluster"):
        assert line.startswith("kubectl "), line
        result = subprocess.run(
            ["bash", "-c", f"set -euo pipefail; {line}"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"
        assert "Error from server" not in result.stderr, f"{line}\n{result.stderr}"
    deployments = kubectl(sandbox, "get", "deployments", "-A", "-o", "name")
    assert {"deployment.apps/replicator", "deployment.apps/service-router", "deployment.apps/hello"} <= set(
        deployments.split()
    )


def test_readme_pygithub_snippet_runs_against_the_sandbox(sandbox: dict[str, str]) -> None:
    """The Python of "Try it by hand" as written: a branch, a file, a PR, a push, a close."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index("## Try it by hand") :]
    snippet = section[section.index("```python\n") + 10 :]
    snippet = "\n".join(line.removeprefix("  ") for line in snippet[: snippet.index("```")].splitlines())
    check = (
        "\nassert pr.state == 'closed' and repo.get_pull(pr.number).head.sha == repo.get_branch('my-change').commit.sha"
        "\nassert repo.get_contents('notes.md', ref='my-change').decoded_content == b'hello again\\n'"
    )
    result = subprocess.run(
        [sys.executable, "-c", snippet + check],
        env={**os.environ, **sandbox},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
