"""A pull request whose image never appears, end to end (``--github-deployments``).

The clone of ``web`` runs ``ghcr.io/mercari/web:<head sha>``, and CI has published no image for
the first head: the emulated kubelet reports ``ErrImagePull``/``ImagePullBackOff``, the clone's
rollout passes its progress deadline (600 s under a time scale of 0.005: 3 s) and its
``Progressing`` condition turns ``False``/``ProgressDeadlineExceeded``. The GitHub deployment of
that head goes ``failure`` with kube-controller-manager's message as the reason, while the
route to the clone stays for the next commit. A fixed commit whose image exists rolls out and
its deployment goes ``success``; a later commit whose image is missing again goes ``failure``
even though the previous commit's Pod keeps serving (the clone is Available, but not rolled out).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.replicator_support import Replicator, head_of, open_pull, seed, start_router, until, wait_clones

from controller_common import contract
from world import OWNER, VIRTUAL_SERVICES, World

pytestmark = pytest.mark.e2e

IMAGE = "ghcr.io/mercari/web"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, time_scale=0.005).start()
    try:
        yield w
    finally:
        w.stop()


def _newest(repo: Any, number: int, sha: str) -> tuple[str, str, list[str]]:
    """(newest state, its description, every state oldest first) of the deployment of ``sha``."""
    for deployment in repo.get_deployments(environment=contract.github_environment(number, "web")):
        if deployment.sha == sha:
            statuses = list(deployment.get_statuses())
            if statuses:
                return statuses[0].state, statuses[0].description, [s.state for s in reversed(statuses)]
    return "", "", []


def _progressing(world: World, clone: str) -> dict[str, Any]:
    deployment = world.snapshot("web").deployments.get(clone) or {}
    conditions = (deployment.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Progressing"), {})


def _waiting_reasons(world: World, clone: str) -> set[str]:
    pods = world.kube.objects("pods", world.namespace)
    return {
        (c["state"].get("waiting") or {}).get("reason", "")
        for p in pods
        if p["metadata"]["name"].startswith(f"{clone}-")
        for c in (p.get("status") or {}).get("containerStatuses") or []
    }


def test_a_missing_image_fails_the_github_deployment_and_a_fixed_commit_succeeds(world: World) -> None:
    repo = world.create_repository("shop")
    world.images.delete_matching(lambda ref: ref.startswith(f"{IMAGE}:") and not ref.endswith(":1.0.0"))
    seed(world, "web", repository=f"{OWNER}/shop", annotations={contract.IMAGE_TEMPLATE_ANNOTATION: "{image}:{sha}"})
    world.client.create(
        VIRTUAL_SERVICES,
        {
            "metadata": {"name": "web", "namespace": world.namespace},
            "spec": {"hosts": ["web"], "http": [{"name": "default", "route": [{"destination": {"host": "web"}}]}]},
        },
    )
    Replicator(world, poll_interval=0.3, extra=["--github-deployments", "--github-write-interval", "0.05"])
    start_router(world)
    number = open_pull(world, repo, "feature")
    clone = f"web-pr{number}"
    head = head_of(wait_clones(world, "web", {number})[number])
    route = f"service-router--{clone}"

    failed = until(
        lambda: (s := _newest(repo, number, head))[0] == "failure" and s,
        timeout=30,
        message="the deployment of the head whose image never appeared fails",
        world=world,
    )
    progressing = _progressing(world, clone)
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert progressing["message"] in failed[1] and "has timed out progressing" in failed[1]
    assert failed[2][0] == "in_progress" and "success" not in failed[2]
    assert _waiting_reasons(world, clone) & {"ErrImagePull", "ImagePullBackOff"}
    assert route in world.snapshot("web").route_names  # still routed, for the fix to land

    fixed = world.push(repo, "feature")
    world.images.push(f"{IMAGE}:{fixed}")  # CI published the image of the fixed commit
    until(
        lambda: _newest(repo, number, fixed)[0] == "success",
        timeout=30,
        message="the fixed commit rolls out and its deployment succeeds",
        world=world,
    )
    assert _progressing(world, clone)["reason"] == "NewReplicaSetAvailable"
    assert world.snapshot("web").image(clone) == f"{IMAGE}:{fixed}"
    assert route in world.snapshot("web").route_names

    broken = world.push(repo, "feature")  # no image again: the fixed commit's Pod keeps serving
    until(
        lambda: _newest(repo, number, broken)[0] == "failure",
        timeout=30,
        message="a later commit without an image fails too, though the clone stays Available",
        world=world,
    )
    assert "success" not in _newest(repo, number, broken)[2]
    available = next(
        c for c in world.snapshot("web").deployments[clone]["status"]["conditions"] if c["type"] == "Available"
    )
    assert available["status"] == "True"
    assert world.github.internal_errors == [] and world.kube.internal_errors == []
