"""``service-router routes`` and ``service-router uninstall`` against the emulated API server."""

from __future__ import annotations

import pytest

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
