"""Each controller's Deployment runs hardened, with flags its own parser accepts, and its
Services, probes, PodDisruptionBudget and Secret mounts line up with what the process listens on.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

import replicator.settings
import service_router.settings
from controller_common import contract
from controller_common.health import parse_bind_address
from shared_data import REPO_ROOT

Render = Callable[[str], list[dict[str, Any]]]
CONTROLLERS = ("replicator", "service-router")
NONROOT_UID = 65532


def _of(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def _deployment(render: Render, controller: str) -> dict[str, Any]:
    (deployment,) = _of(render(controller), "Deployment")
    return deployment


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _flags(container: dict[str, Any]) -> dict[str, str]:
    return dict(arg.split("=", 1) if "=" in arg else (arg, "") for arg in container["args"])


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


def _bound_port(flags: dict[str, str], flag: str) -> int:
    address = parse_bind_address(flags[flag])
    assert address is not None, f"{flag} is disabled"
    return address[1]


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_runs_two_replicas_that_roll_without_a_gap(controller: str, render: Render) -> None:
    deployment = _deployment(render, controller)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "--leader-elect" in _container(deployment)["args"]


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_the_image_is_the_released_version_of_the_controller(controller: str, render: Render) -> None:
    project = tomllib.loads((REPO_ROOT / controller / "pyproject.toml").read_text())["project"]
    assert _container(_deployment(render, controller))["image"] == f"ghcr.io/mercari/{controller}:{project['version']}"


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_runs_as_non_root_read_only_without_privileges(controller: str, render: Render) -> None:
    """Pod Security Standards "restricted", and the same uid as the Dockerfile's USER."""
    pod = _deployment(render, controller)["spec"]["template"]["spec"]
    container = _container(_deployment(render, controller))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == NONROOT_UID
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True and security["runAsUser"] == NONROOT_UID
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    assert all({"secret", "emptyDir"} & volume.keys() for volume in pod.get("volumes", []))
    assert f"USER {NONROOT_UID}:{NONROOT_UID}" in (REPO_ROOT / controller / "Dockerfile").read_text()
    # The namespace enforces the same profile on anything else that lands in it.
    (namespace,) = _of(render(controller), "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_requests_and_limits_are_set(controller: str, render: Render) -> None:
    resources = _container(_deployment(render, controller))["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_probes_hit_healthz_and_readyz_where_the_process_serves_them(controller: str, render: Render) -> None:
    container = _container(_deployment(render, controller))
    probe_port = _bound_port(_flags(container), "--health-probe-bind-address")
    liveness, readiness = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
    assert liveness["path"] == "/healthz" and readiness["path"] == "/readyz"
    assert _port_number(container, liveness["port"]) == _port_number(container, readiness["port"]) == probe_port


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_the_metrics_service_reaches_the_metrics_port_of_every_replica(controller: str, render: Render) -> None:
    objects = render(controller)
    deployment = _deployment(render, controller)
    container = _container(deployment)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    (service,) = [s for s in _of(objects, "Service") if s["metadata"]["name"] == f"{controller}-metrics"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert _port_number(container, port["targetPort"]) == _bound_port(_flags(container), "--metrics-bind-address")


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_the_disruption_budget_covers_the_controller_pods(controller: str, render: Render) -> None:
    (budget,) = _of(render(controller), "PodDisruptionBudget")
    deployment = _deployment(render, controller)
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    assert budget["spec"]["maxUnavailable"] == 1


def _with_secret_files(args: list[str], secret_dir: Path, mount: str) -> list[str]:
    return [arg.replace(mount, str(secret_dir)) for arg in args]


def test_the_replicator_flags_parse_with_its_own_parser(render: Render, tmp_path: Path) -> None:
    """The real parser accepts the args, reads the mounted Secret and enables the webhook."""
    deployment = _deployment(render, "replicator")
    container = _container(deployment)
    (mount,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "github"]
    (tmp_path / "token").write_text("ghp_example\n")
    (tmp_path / "webhook-secret").write_text("shh\n")
    settings = replicator.settings.parse_settings(
        _with_secret_files(container["args"], tmp_path, mount), environ={"POD_NAMESPACE": "replicator-system"}
    )
    assert settings.github_token == "ghp_example"
    assert settings.webhook_secret == b"shh"
    assert settings.process.leader_election is not None
    assert settings.process.leader_election.namespace == "replicator-system"
    assert settings.process.namespaces == ()


def test_the_replicator_reads_its_token_and_webhook_secret_from_the_mounted_secret(render: Render) -> None:
    container = _container(_deployment(render, "replicator"))
    flags = _flags(container)
    pod = _deployment(render, "replicator")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "github"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "github"]
    assert mount["readOnly"] is True
    assert volume["secret"]["secretName"] == "replicator-github"
    assert flags["--github-token-file"] == f"{mount['mountPath']}/token"
    assert flags["--webhook-secret-file"] == f"{mount['mountPath']}/webhook-secret"
    # Mode 0440: readable through the pod's fsGroup, not by the world.
    assert volume["secret"]["defaultMode"] == 0o440 and pod["securityContext"]["fsGroup"] == NONROOT_UID


def test_the_webhook_service_reaches_the_webhook_receiver(render: Render) -> None:
    deployment = _deployment(render, "replicator")
    container = _container(deployment)
    (service,) = [s for s in _of(render("replicator"), "Service") if s["metadata"]["name"] == "replicator-webhook"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    # Only the leader listens: the Service selects the replicator's pods AND the label the leader
    # puts on its own Pod; the template never carries it, or every replica would be selected.
    selector = dict(service["spec"]["selector"])
    assert selector.pop(contract.WEBHOOK_RECEIVER_LABEL) == "true"
    assert contract.WEBHOOK_RECEIVER_LABEL not in pod_labels
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert _port_number(container, port["targetPort"]) == _bound_port(_flags(container), "--webhook-bind-address")


def test_the_service_router_flags_parse_with_its_own_parser(render: Render) -> None:
    container = _container(_deployment(render, "service-router"))
    settings = service_router.settings.parse_settings(
        container["args"], environ={"POD_NAMESPACE": "service-router-system"}
    )
    assert settings.process.leader_election is not None
    assert settings.process.namespaces == ()


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_the_namespaced_install_watches_the_listed_namespaces(controller: str, render: Render) -> None:
    (deployment,) = [d for d in _of(render("overlays/namespaced"), "Deployment") if d["metadata"]["name"] == controller]
    args = _container(deployment)["args"]
    parse = (
        replicator.settings.build_parser().parse_args
        if controller == "replicator"
        else lambda argv: service_router.settings.parse_settings(argv, environ={"POD_NAMESPACE": "x"}).process
    )
    parsed = parse(args)
    namespaces = parsed.namespace if controller == "replicator" else parsed.namespaces
    assert list(namespaces) == ["team-a", "team-b"]


def test_the_github_app_component_authenticates_as_an_app(render_with: Any, tmp_path: Path) -> None:
    """The component swaps the token for a GitHub App; the real parser accepts the result."""
    (tmp_path / "overlay").mkdir()
    objects = render_with(tmp_path / "overlay", ["replicator"], ["replicator/components/github-app"])
    (deployment,) = _of(objects, "Deployment")
    for obj in objects:
        kubernetes_validate.validate(obj, "1.33", strict=True)
    container = _container(deployment)
    (mount,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "github"]
    (app_id,) = [e for e in container["env"] if e["name"] == "GITHUB_APP_ID"]
    assert app_id["valueFrom"]["secretKeyRef"] == {"name": "replicator-github", "key": "app-id"}
    assert not any(arg.startswith("--github-token-file") for arg in container["args"])
    secrets = tmp_path / "secret"
    secrets.mkdir()
    (secrets / "private-key").write_text("-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----\n")
    (secrets / "webhook-secret").write_text("shh\n")
    settings = replicator.settings.parse_settings(
        _with_secret_files(container["args"], secrets, mount),
        environ={"POD_NAMESPACE": "replicator-system", "GITHUB_APP_ID": "12345"},
    )
    assert settings.github_app_id == 12345 and settings.github_token is None
    # Everything else is the base's: only args and env differ.
    assert _container(deployment)["image"] == "ghcr.io/mercari/replicator:0.1.0"
