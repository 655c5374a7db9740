"""A pull request's life against a REAL cluster: ``make test-integration`` (docker-compose.test.yml).

There the controllers run from their Dockerfiles next to a k3s server and the GitHub emulator;
this test only acts as a person would (PyGithub, the Kubernetes API) through the standard
``KUBECONFIG``, ``GITHUB_API_URL`` and ``GITHUB_TOKEN``. Without ``E2E_EXTERNAL_CLUSTER=1`` it skips:
CI has no Docker engine, and the same story runs against the emulator in ``tests/e2e``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
import yaml
from github import Auth, Github

from controller_common import errors
from controller_common.kube import CUSTOM_RESOURCE_DEFINITIONS, DEPLOYMENTS, NAMESPACES, SERVICES, KubeClient
from e2e_support import wait_until
from emulators.kube_api import BUNDLED_VIRTUAL_SERVICE_CRD
from world import VIRTUAL_SERVICES, push_commit, seed_origin

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("E2E_EXTERNAL_CLUSTER") != "1",
        reason="needs a real cluster: run `make test-integration` (Docker) or set E2E_EXTERNAL_CLUSTER=1",
    ),
]


@pytest.fixture
def client() -> Iterator[KubeClient]:
    kube = KubeClient.from_environment()
    # Istio (or an earlier run) may already serve VirtualServices.
    with contextlib.suppress(errors.AlreadyExists):
        kube.create(CUSTOM_RESOURCE_DEFINITIONS, yaml.safe_load(BUNDLED_VIRTUAL_SERVICE_CRD.read_text()))
    yield kube
    kube.close()


@pytest.fixture
def namespace(client: KubeClient) -> Iterator[str]:
    name = f"pr-env-it-{uuid.uuid4().hex[:6]}"
    client.create(NAMESPACES, {"metadata": {"name": name}})
    yield name
    client.delete(NAMESPACES, None, name)


def test_pull_request_environment_on_a_real_cluster(client: KubeClient, namespace: str) -> None:
    github = Github(base_url=os.environ["GITHUB_API_URL"], auth=Auth.Token(os.environ["GITHUB_TOKEN"]), retry=None)
    repo = github.get_user().create_repo(f"echo-{namespace}")
    seed_origin(client, namespace, "echo", repository=repo.full_name, image="ghcr.io/mercari/echo:1.4.2")
    repo.create_git_ref("refs/heads/feature", repo.get_branch("main").commit.sha)
    push_commit(repo, "feature")
    pull = repo.create_pull(title="feature", head="feature", base="main")
    clone = f"echo-pr{pull.number}"

    def routes() -> list[str]:
        vs = client.get(VIRTUAL_SERVICES, namespace, "echo")
        return [str(r.get("name")) for r in vs["spec"]["http"]]

    wait_until(lambda: f"service-router--{clone}" in routes(), timeout=120, message="clone routed")
    assert client.get(DEPLOYMENTS, namespace, clone)["spec"]["replicas"] == 1
    assert client.get(SERVICES, namespace, clone)["metadata"]["annotations"]

    pull.edit(state="closed")
    wait_until(lambda: routes() == ["default"], timeout=120, message="route removed")

    def clone_gone() -> bool:
        try:
            client.get(DEPLOYMENTS, namespace, clone)
        except errors.NotFound:
            return True
        return False

    wait_until(clone_gone, timeout=120, message="clone deleted")
