"""``service-router routes``, ``header`` and ``uninstall`` against the emulated API server, also as
the kubectl plugin ``kubectl service-router`` run by the pinned kubectl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from controller_common import contract, errors
from controller_common.kube import DEPLOYMENTS, SERVICES
from service_router.cli import run_helper
from service_router.uninstall import plan_uninstall

from .conftest import NS, Rig

CLONE = "echo-pr1"


def _run(rig: Rig, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()  # drop the reconciler's log lines
    code = run_helper([*args, "--kubeconfig", str(rig.kubeconfig)])
    return code, capsys.readouterr().out


def _deployment(rig: Rig, name: str, labels: dict[str, str]) -> None:
    rig.client.create(
        DEPLOYMENTS,
        {
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
            },
        },
    )


def test_routes_lists_each_clone_with_its_header_readiness_and_route_names(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    rig.origin()
    rig.origin("other")
    rig.clone(CLONE)
    rig.clone("other-pr7", origin="other")
    rig.reconcile()
    rig.reconcile("other")
    _deployment(rig, "echo-pr1", {"clone": CLONE})

    code, out = _run(rig, capsys, "routes")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "ORIGIN", "HEADER", "VALUE", "CLONE", "READY", "ROUTES"]
    echo = next(line.split() for line in lines if " echo-pr1 " in line)
    assert echo[:5] == [NS, "echo", "service-router-echo-default", "echo-pr1.default", "echo-pr1"]
    assert echo[5] in ("yes", "no")  # the emulated Deployment controller may not have made it available yet
    assert echo[6] == contract.managed_route_name(CLONE)
    other = next(line.split() for line in lines if " other-pr7 " in line)
    assert other[5] == "no"

    code, out = _run(rig, capsys, "routes", "-n", NS, "other")
    assert code == 0
    assert "other-pr7" in out and "echo-pr1" not in out

    code, out = _run(rig, capsys, "routes", "-n", "elsewhere")
    assert (code, out.strip()) == (0, "no pull-request routes")


def test_uninstall_removes_routes_created_virtual_services_and_finalizers(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    rig.origin()
    rig.origin("bare", virtual_service=False)
    rig.clone(CLONE)
    rig.clone("bare-pr2", origin="bare")
    rig.reconcile()
    rig.reconcile("bare")
    assert rig.route_names("bare") == [contract.managed_route_name("bare-pr2"), "default"]
    before = rig.vs()
    writes = len([r for r in rig.server.request_log if r.is_write])

    code, out = _run(rig, capsys, "uninstall", "--dry-run")
    assert code == 0
    assert out.count("(dry run)") == 4, out  # update echo, delete bare, two finalizers
    assert rig.vs() == before
    assert len([r for r in rig.server.request_log if r.is_write]) == writes

    code, out = _run(rig, capsys, "uninstall")
    assert code == 0, out
    assert rig.route_names() == ["default"]
    assert rig.vs()["spec"]["http"][0]["timeout"] == "5s"  # the origin's own route untouched
    with pytest.raises(errors.NotFound):
        rig.vs("bare")
    for name in (CLONE, "bare-pr2"):
        assert contract.ROUTER_FINALIZER not in (rig.client.get(SERVICES, NS, name)["metadata"].get("finalizers") or [])

    code, out = _run(rig, capsys, "uninstall")
    assert (code, out.strip()) == (0, "nothing to remove")


def test_uninstall_plan_keeps_foreign_routes_and_foreign_virtual_services() -> None:
    ours = {"app.kubernetes.io/managed-by": "service-router"}
    header = {contract.routing_header("echo", NS): {"exact": contract.routing_value("echo-pr1", NS)}}
    managed = {
        "name": "service-router--echo-pr1",
        "match": [{"headers": header}],
        "route": [{"destination": {"host": "echo-pr1"}}],
    }
    # Named like ours, but no routing header: someone else's, so it stays.
    foreign = {"name": "service-router--canary", "route": [{"destination": {"host": "canary"}}]}
    default = {"name": "default", "route": [{"destination": {"host": "echo"}}]}

    def vs(name: str, http: list[dict], labels: dict[str, str] | None = None) -> dict:
        return {"metadata": {"name": name, "namespace": NS, "labels": labels or {}}, "spec": {"http": http}}

    steps = plan_uninstall(
        [
            vs("a-theirs", [managed, default]),
            vs("b-ours-shared", [managed, foreign, default], ours),
            vs("c-ours", [managed, default], ours),
            vs("d-untouched", [foreign, default]),
        ],
        [{"metadata": {"name": "s", "namespace": NS, "finalizers": ["x/y", contract.ROUTER_FINALIZER]}}],
    )

    assert [(s.action, s.obj["metadata"]["name"]) for s in steps] == [
        ("update", "a-theirs"),
        ("update", "b-ours-shared"),
        ("delete", "c-ours"),
        ("release", "s"),
    ]
    assert steps[0].obj["spec"]["http"] == [default]
    assert steps[1].obj["spec"]["http"] == [foreign, default]


def _routed_pair(rig: Rig) -> None:
    rig.origin()
    rig.clone(CLONE)
    rig.reconcile()


EXPECTED_ITEM = {
    "namespace": NS,
    "origin": "echo",
    "header": "service-router-echo-default",
    "value": "echo-pr1.default",
    "clone": CLONE,
    "ready": "no",
    "routes": [contract.managed_route_name(CLONE)],
}


@pytest.mark.parametrize(
    ("args", "parse"),
    [(["-A", "-o", "json"], json.loads), (["-o", "yaml"], yaml.safe_load), (["-n", NS, "-o", "json"], json.loads)],
    ids=["all-namespaces-json", "yaml", "namespace-json"],
)
def test_routes_prints_a_list_document_for_scripts(
    rig: Rig, capsys: pytest.CaptureFixture[str], args: list[str], parse: object
) -> None:
    _routed_pair(rig)
    code, out = _run(rig, capsys, "routes", *args)
    assert code == 0
    assert parse(out) == {"kind": "List", "items": [EXPECTED_ITEM]}  # type: ignore[operator]


def test_routes_refuses_a_namespace_with_all_namespaces(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        _run(rig, capsys, "routes", "-A", "-n", NS)
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def _header(rig: Rig, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run_helper(["header", *args, "--kubeconfig", str(rig.kubeconfig)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_header_says_when_the_clone_does_not_exist(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    _routed_pair(rig)
    code, out, err = _header(rig, capsys, "echo-pr1")
    assert (code, err) == (0, "")
    assert out.startswith("To route requests to echo-pr1")

    code, out, err = _header(rig, capsys, "echo-pr9")
    assert code == 1
    assert "no Service echo-pr9 in namespace default: nothing answers this header" in err
    assert "service-router-echo-default: echo-pr9.default" in out  # the recipe still, for a PR about to open

    code, out, err = _header(rig, capsys, "echo-pr1", "--origin", "other")
    assert code == 1
    assert "Service echo-pr1 in namespace default is no clone of other" in err


def test_header_without_a_cluster_says_it_did_not_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert run_helper(["header", "echo-pr1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Not checked against a cluster (")
    assert run_helper(["header", "echo-pr1", "--offline"]) == 0
    assert capsys.readouterr().out.startswith("To route requests to echo-pr1")


def test_kubectl_plugin_through_the_pinned_kubectl(rig: Rig) -> None:
    """kubectl finds ``kubectl-service_router`` on PATH and runs it for ``kubectl service-router``."""
    _routed_pair(rig)
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": str(rig.kubeconfig),
    }
    plugins = subprocess.run(
        [str(bin_dir / "kubectl"), "plugin", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert str(bin_dir / "kubectl-service_router") in plugins.stdout, plugins.stderr
    result = subprocess.run(
        [str(bin_dir / "kubectl"), "service-router", "routes", "-A", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["items"] == [EXPECTED_ITEM]
    usage = subprocess.run(
        [str(bin_dir / "kubectl"), "service-router", "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert usage.stdout.startswith("usage: kubectl service-router")
