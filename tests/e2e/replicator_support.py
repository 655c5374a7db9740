"""Helpers for the replicator's end-to-end scenarios (on top of ``world.World``).

The replicator runs as a real process from its console script, configured by flags and the
standard environment, next to the service-router process. Origins are seeded with whatever
replication annotations a scenario needs; every observation goes through the emulators' APIs
and request logs, and waits are conditions with deadlines.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import kubernetes_validate

from controller_common import contract
from controller_common.kube import DEPLOYMENTS, EVENTS, SERVICES
from e2e_support import ControllerProcess, wait_until
from world import OWNER, World, free_port

IMAGE = "ghcr.io/mercari/{name}:1.0.0"


def seed(
    world: World,
    name: str,
    *,
    repository: str,
    annotations: Mapping[str, str] | None = None,
    service: bool = True,
) -> None:
    """An opted-in origin Deployment and (unless ``service=False``) the Service selecting it."""
    labels = {"app": name}
    world.client.create(
        DEPLOYMENTS,
        {
            "metadata": {
                "name": name,
                "namespace": world.namespace,
                "labels": labels,
                "annotations": {contract.REPOSITORY_ANNOTATION: repository, **(annotations or {})},
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": {**labels, "version": "v1"}},
                    "spec": {"containers": [{"name": name, "image": IMAGE.format(name=name)}]},
                },
            },
        },
    )
    if service:
        world.client.create(
            SERVICES,
            {
                "metadata": {"name": name, "namespace": world.namespace, "labels": labels},
                "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
            },
        )


class Replicator:
    """The replicator process with known metrics and (optionally) webhook ports."""

    def __init__(
        self,
        world: World,
        *,
        poll_interval: float,
        extra: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        tag: str = "",
    ) -> None:
        self.metrics_port = free_port()
        args = [
            "--metrics-bind-address",
            f"127.0.0.1:{self.metrics_port}",
            "--health-probe-bind-address",
            "127.0.0.1:0",
            "--resync-period",
            "30",
            "--poll-interval",
            str(poll_interval),
            *extra,
        ]
        self.process = ControllerProcess(
            f"replicator{tag}", args, env={**world.env, **(env or {})}, log_dir=world.workdir
        )
        world.controllers.append(self.process)

    def metric(self, name: str, /, **labels: str) -> float:
        """The current value of one sample on ``/metrics`` (0 when absent)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith("#") or " " not in line:
                continue
            key, value = line.rsplit(" ", 1)
            metric, _, rest = key.partition("{")
            if metric != name:
                continue
            have = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
            if have == wanted:
                return float(value)
        return 0.0

    def stop(self) -> int:
        return self.process.stop()


def start_router(world: World) -> None:
    args = ["--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"]
    world.controllers.append(ControllerProcess("service-router", args, env=world.env, log_dir=world.workdir))


def clone_deployments(world: World, origin: str) -> dict[int, dict[str, Any]]:
    """PR number -> clone Deployment of ``origin``."""
    items, _ = world.client.list(DEPLOYMENTS, world.namespace)
    return {
        int(d["metadata"]["labels"][contract.PULL_REQUEST_LABEL]): d
        for d in items
        if (d["metadata"].get("annotations") or {}).get(contract.CLONE_ORIGIN_ANNOTATION) == origin
    }


def head_of(clone: dict[str, Any]) -> str:
    return str(clone["metadata"]["annotations"][contract.CLONE_HEAD_SHA_ANNOTATION])


def wait_clones(world: World, origin: str, numbers: Iterable[int], *, timeout: float = 20.0) -> dict[int, Any]:
    """Wait until ``origin`` has clones for exactly these PR numbers."""
    expected = set(numbers)

    def check() -> list[dict[int, Any]] | None:
        found = clone_deployments(world, origin)
        return [found] if set(found) == expected else None  # a list, so that "no clones" is truthy

    try:
        return wait_until(check, timeout=timeout, message=f"{origin} has clones for PRs {sorted(expected)}")[0]
    except AssertionError as exc:
        have = sorted(clone_deployments(world, origin))
        raise AssertionError(f"{exc} (has {have})\n{world.logs()[-8000:]}") from None


def events(world: World, involved: str) -> list[dict[str, Any]]:
    items, _ = world.client.list(EVENTS, world.namespace)
    return [e for e in items if e.get("involvedObject", {}).get("name") == involved]


def wait_event(
    world: World, involved: str, reason: str, *, contains: str = "", timeout: float = 20.0
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        return next(
            (e for e in events(world, involved) if e.get("reason") == reason and contains in e.get("message", "")),
            None,
        )

    try:
        return wait_until(check, timeout=timeout, message=f"Event {reason} on {involved} containing {contains!r}")
    except AssertionError as exc:
        seen = [(e.get("reason"), e.get("message")) for e in events(world, involved)]
        raise AssertionError(f"{exc}; events: {seen}\n{world.logs()[-6000:]}") from None


def open_pull(world: World, repo: Any, branch: str, *, base: str = "main", draft: bool = False, **push: Any) -> int:
    """Push ``branch`` (created from ``base``) and open a pull request from it."""
    if base == "main":
        world.github.push(OWNER, repo.name, branch, **push)
    else:
        repo.create_git_ref(f"refs/heads/{branch}", repo.get_branch(base).commit.sha)
        world.push(repo, branch)
    return int(repo.create_pull(title=f"Work on {branch}", head=branch, base=base, draft=draft).number)


def validate_written(world: World) -> int:
    """Every Deployment, Service and Event the replicator wrote validates against Kubernetes 1.33 (strict)."""
    count = 0
    for resource in (DEPLOYMENTS, SERVICES):
        items, _ = world.client.list(resource, world.namespace)
        for obj in items:
            if (obj["metadata"].get("labels") or {}).get(contract.MANAGED_BY_LABEL) == contract.REPLICATOR_MANAGER:
                body = {k: v for k, v in obj.items() if k != "status"}
                kubernetes_validate.validate(body, "1.33", strict=True)
                count += 1
    items, _ = world.client.list(EVENTS, world.namespace)
    for event in items:
        if (event.get("source") or {}).get("component") == "replicator":
            kubernetes_validate.validate(event, "1.33", strict=True)
            count += 1
    return count


def until(predicate: Callable[[], Any], *, timeout: float = 20.0, message: str, world: World) -> Any:
    try:
        return wait_until(predicate, timeout=timeout, message=message)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{world.logs()[-8000:]}") from None


def list_requests(world: World, repository: str) -> int:
    """Pull-request list requests for ``owner/name`` in the GitHub emulator's log."""
    return sum(
        1 for r in list(world.github.request_log) if r.method == "GET" and r.path == f"/repos/{repository}/pulls"
    )


def settle(world: World, *, repository: str, polls: int = 3, timeout: float = 20.0) -> None:
    """Wait until ``polls`` consecutive polls of ``repository`` pass without any Kubernetes write.

    Measured in polls, not seconds: the rollouts and route updates started by the scenario's last
    step finish first, so a steady-state window that follows sees only what recurs.
    """
    writes: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        world.kube.clear_request_log()
        world.github.clear_request_log()
        wait_until(lambda: list_requests(world, repository) >= polls, timeout=timeout, message=f"{polls} polls")
        writes = [
            f"{r.verb} {r.resource}/{r.name}{r.subresource and '/' + r.subresource}"
            for r in list(world.kube.request_log)
            if r.is_write
        ]
        if not writes:
            return
    raise AssertionError(f"Kubernetes writes go on (last window: {writes[:20]})\n{world.logs()[-6000:]}")
