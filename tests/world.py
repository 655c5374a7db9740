"""A small world for end-to-end tests and the demo: emulated cluster and GitHub, real controllers.

The emulators run in this process (tests drive and inspect them); the two controllers run as
separate OS processes from their console scripts, configured only through the standard
environment (``KUBECONFIG``, ``GITHUB_API_URL``, ``GITHUB_TOKEN``), exactly as by hand or in a
cluster. A developer acts on GitHub through PyGithub, as a person would.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from github import Auth, Github
from github.Repository import Repository as GitHubRepository

from controller_common import contract
from controller_common.kube import DEPLOYMENTS, SERVICES, KubeClient, Resource
from e2e_support import ControllerProcess, wait_until
from emulators.github_api import GitHubApiServer
from emulators.kube_api import BUNDLED_VIRTUAL_SERVICE_CRD, KubeApiServer
from emulators.kube_api.images import ImageRegistry
from shared_data import istio_crd_paths

VIRTUAL_SERVICES = Resource(group="networking.istio.io", version="v1", plural="virtualservices", kind="VirtualService")
TOKEN = "developer-token"
OWNER = "mercari"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def push_commit(repo: GitHubRepository, branch: str) -> str:
    """A new commit on ``branch`` through the REST API: what a ``git push`` does to a PR head."""
    ref = repo.get_git_ref(f"heads/{branch}")
    parent = repo.get_git_commit(ref.object.sha)
    commit = repo.create_git_commit(f"change on {branch}", parent.tree, [parent])
    ref.edit(commit.sha)
    return commit.sha


def seed_origin(
    client: KubeClient, namespace: str, name: str, *, repository: str, image: str, port: int = 8080
) -> None:
    """An origin Deployment (opted in), its Service, and a VirtualService with one default route."""
    labels = {"app": name}
    client.create(
        DEPLOYMENTS,
        {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "annotations": {contract.REPOSITORY_ANNOTATION: repository},
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": {**labels, "version": "v1"}},
                    "spec": {"containers": [{"name": name, "image": image, "ports": [{"containerPort": port}]}]},
                },
            },
        },
    )
    client.create(
        SERVICES,
        {
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": port}]},
        },
    )
    client.create(
        VIRTUAL_SERVICES,
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "hosts": [f"{name}.{namespace}.svc.cluster.local"],
                "http": [
                    {
                        "name": "default",
                        "route": [{"destination": {"host": f"{name}.{namespace}.svc.cluster.local"}}],
                    }
                ],
            },
        },
    )


@dataclass
class Snapshot:
    """What a person would look at: Deployments, Services and the routes of one VirtualService."""

    deployments: dict[str, dict[str, Any]]
    services: dict[str, dict[str, Any]]
    virtual_service: dict[str, Any] | None

    @property
    def route_names(self) -> list[str]:
        if self.virtual_service is None:
            return []
        return [str(r.get("name", "")) for r in self.virtual_service["spec"].get("http") or []]

    def image(self, deployment: str) -> str:
        return str(self.deployments[deployment]["spec"]["template"]["spec"]["containers"][0]["image"])


@dataclass
class World:
    workdir: Path
    namespace: str = "default"
    time_scale: float = 1.0
    """How fast Kubernetes durations pass in the emulated cluster (0.01: a 600 s progress deadline is 6 s)."""
    kube: KubeApiServer = field(init=False)
    github: GitHubApiServer = field(init=False)
    client: KubeClient = field(init=False)
    kubeconfig: Path = field(init=False)
    controllers: list[ControllerProcess] = field(default_factory=list, init=False)

    def start(self, *, crd_paths: Sequence[Path] | None = None) -> World:
        self.kube = KubeApiServer(deployment_delay_seconds=0.05, time_scale=self.time_scale).start()
        self.kubeconfig = self.kube.write_kubeconfig(self.workdir / "kubeconfig")
        paths = list(crd_paths) if crd_paths is not None else (istio_crd_paths() or [BUNDLED_VIRTUAL_SERVICE_CRD])
        self.kube.apply_crd_files(paths)
        self.github = GitHubApiServer().start()
        self.github.add_token(TOKEN, login="developer")
        self.github.add_org(OWNER, members=["developer"])
        self.client = KubeClient.from_environment(str(self.kubeconfig))
        return self

    @property
    def images(self) -> ImageRegistry:
        """The registry the emulated kubelet pulls from: every image exists until a test says otherwise."""
        return self.kube.images

    @property
    def developer(self) -> Github:
        # No client-side pacing: PyGithub waits 1 s before every write by default, which only slows tests.
        return Github(
            base_url=self.github.api_url,
            auth=Auth.Token(TOKEN),
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )

    @property
    def env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig), "GITHUB_API_URL": self.github.api_url, "GITHUB_TOKEN": TOKEN}

    # --- the cluster as a platform team sets it up --------------------------------------------

    def create_repository(self, name: str) -> GitHubRepository:
        return self.developer.get_organization(OWNER).create_repo(name)

    def seed_origin(self, name: str, *, repository: str, image: str, port: int = 8080) -> None:
        seed_origin(self.client, self.namespace, name, repository=repository, image=image, port=port)

    # --- the controllers, as separate processes -------------------------------------------------

    def start_controllers(self, *, poll_interval: float = 0.3, extra: Iterable[str] = ()) -> None:
        common = ["--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"]
        common += ["--resync-period", "30", *extra]
        env = {**self.env, "POLL_INTERVAL_SECONDS": str(poll_interval)}
        self.controllers.append(ControllerProcess("replicator", common, env=env, log_dir=self.workdir))
        self.controllers.append(ControllerProcess("service-router", common, env=env, log_dir=self.workdir))

    def logs(self) -> str:
        return "\n".join(f"===== {c.name} =====\n{c.logs()}" for c in self.controllers)

    # --- a developer's day on GitHub ------------------------------------------------------------

    def open_pull_request(self, repo: GitHubRepository, branch: str, *, draft: bool = False) -> int:
        main = repo.get_branch("main").commit.sha
        repo.create_git_ref(f"refs/heads/{branch}", main)
        self.push(repo, branch)
        return repo.create_pull(title=f"Work on {branch}", head=branch, base="main", draft=draft).number

    def push(self, repo: GitHubRepository, branch: str) -> str:
        return push_commit(repo, branch)

    # --- looking at the cluster -------------------------------------------------------------------

    def snapshot(self, origin: str) -> Snapshot:
        deployments, _ = self.client.list(DEPLOYMENTS, self.namespace)
        services, _ = self.client.list(SERVICES, self.namespace)
        virtual_services, _ = self.client.list(VIRTUAL_SERVICES, self.namespace)
        return Snapshot(
            deployments={d["metadata"]["name"]: d for d in deployments},
            services={s["metadata"]["name"]: s for s in services},
            virtual_service=next((v for v in virtual_services if v["metadata"]["name"] == origin), None),
        )

    def wait_for(self, origin: str, predicate: Any, *, timeout: float = 30.0, message: str = "") -> Snapshot:
        def check() -> Snapshot | None:
            snap = self.snapshot(origin)
            return snap if predicate(snap) else None

        try:
            return wait_until(check, timeout=timeout, message=message)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()[-6000:]}") from None

    def stop(self) -> None:
        for controller in self.controllers:
            controller.stop()
        self.client.close()
        self.github.stop()
        self.kube.stop()
