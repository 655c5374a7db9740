"""End-to-end latency with the real controller processes against the emulators.

Both controllers run as OS processes from their console scripts (``tests/world.py``); the
developer acts through PyGithub. For each pull request: the time from ``create_pull`` to the
clone Deployment existing, and to the clone's route being in the origin's VirtualService; then
from a push (the branch ref moving to a new commit) to the clone's head-sha annotation naming
it. Without webhooks the replicator learns of both by polling, so the figures are bounded by
the poll interval (printed): expect about half of it on average and all of it at worst, plus
the reconcile and write path. The cluster is read in-process every 5 ms (no HTTP, not in the
request log), so the figures are precise to about that. A first pull request warms both
controllers up and is not counted.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import developer
from benchmarks.measure import Table
from controller_common import contract
from world import World

NAME = "end-to-end-latency"
TITLE = "4. End-to-end latency (real controller processes, emulated Kubernetes and GitHub)"
ORIGIN = "echo"
IMAGE = "ghcr.io/mercari/echo:1.4.2"
FULL = {"pull_requests": 5, "poll_interval": 1.0}
QUICK = {"pull_requests": 1, "poll_interval": 0.2}
PROBE_SECONDS = 0.005
TIMEOUT = 30.0


def _deployment(world: World, name: str) -> dict[str, Any] | None:
    return next((d for d in world.kube.objects("deployments", world.namespace) if d["metadata"]["name"] == name), None)


def _routed(world: World, clone: str) -> bool:
    for vs in world.kube.objects("virtualservices.networking.istio.io", world.namespace):
        if vs["metadata"]["name"] == ORIGIN:
            return any(r.get("name") == f"{contract.MANAGED_ROUTE_PREFIX}{clone}" for r in vs["spec"].get("http") or [])
    return False


def _head_sha(world: World, clone: str) -> str | None:
    deployment = _deployment(world, clone)
    return (
        None
        if deployment is None
        else (deployment["metadata"].get("annotations") or {}).get(contract.CLONE_HEAD_SHA_ANNOTATION)
    )


def _until(started: float, conditions: dict[str, Callable[[], bool]], world: World) -> dict[str, float]:
    """Seconds from ``started`` until each condition first held."""
    reached: dict[str, float] = {}
    deadline = started + TIMEOUT
    while len(reached) < len(conditions):
        now = time.monotonic()
        for label, check in conditions.items():
            if label not in reached and check():
                reached[label] = now - started
        if now > deadline:
            missing = sorted(set(conditions) - set(reached))
            raise AssertionError(f"not reached within {TIMEOUT}s: {missing}\n{world.logs()[-4000:]}")
        time.sleep(PROBE_SECONDS)
    return reached


def _open(world: World, repo: Any, branch: str) -> tuple[int, float]:
    """Branch and first commit first, then the timed ``create_pull``: (number, monotonic time before it)."""
    main = repo.get_branch("main").commit.sha
    repo.create_git_ref(f"refs/heads/{branch}", main)
    world.push(repo, branch)
    started = time.monotonic()
    return repo.create_pull(title=f"Work on {branch}", head=branch, base="main").number, started


def _push(repo: Any, branch: str) -> tuple[str, float]:
    """A new commit, then the timed ref update (the moment of the push)."""
    ref = repo.get_git_ref(f"heads/{branch}")
    parent = repo.get_git_commit(ref.object.sha)
    commit = repo.create_git_commit(f"change on {branch}", parent.tree, [parent])
    started = time.monotonic()
    ref.edit(commit.sha)
    return commit.sha, started


def run(*, quick: bool = False) -> list[Table]:
    sizes = QUICK if quick else FULL
    samples: dict[str, list[float]] = {"deployment": [], "route": [], "push": []}
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        world = World(Path(tmp)).start()
        try:
            world.create_repository(ORIGIN)
            repo = developer.repository(world, ORIGIN)
            world.seed_origin(ORIGIN, repository=f"https://github.com/mercari/{ORIGIN}", image=IMAGE)
            world.start_controllers(poll_interval=sizes["poll_interval"])
            phase = random.Random(4)
            for i in range(sizes["pull_requests"] + 1):
                branch = f"feature-{i}"
                # Acting right after the controller reacted would always land just after a poll
                # (phase-locked: every figure would be the whole interval); start at a random phase.
                time.sleep(phase.uniform(0, sizes["poll_interval"]))
                number, started = _open(world, repo, branch)
                clone = contract.clone_name(ORIGIN, number)
                reached = _until(
                    started,
                    {
                        "deployment": lambda c=clone: _deployment(world, c) is not None,
                        "route": lambda c=clone: _routed(world, c),
                    },
                    world,
                )
                time.sleep(phase.uniform(0, sizes["poll_interval"]))
                sha, started = _push(repo, branch)
                reached |= _until(started, {"push": lambda c=clone, s=sha: _head_sha(world, c) == s}, world)
                if i > 0:  # the first pull request warmed the controllers up
                    for label, seconds in reached.items():
                        samples[label].append(seconds)
        finally:
            world.stop()
    table = Table(TITLE, ["event", "until", "n", "p50 ms", "max ms", "mean ms"])
    rows = [
        ("create_pull", "clone Deployment exists", "deployment"),
        ("create_pull", "route in VirtualService", "route"),
        ("push", "clone head-sha annotation", "push"),
    ]
    for event, until, key in rows:
        values = samples[key]
        table.add(
            event,
            until,
            len(values),
            statistics.median(values) * 1e3,
            max(values) * 1e3,
            statistics.fmean(values) * 1e3,
        )
    table.notes += [
        f"replicator poll interval: {sizes['poll_interval']} s (POLL_INTERVAL_SECONDS; no webhooks configured),"
        f" {sizes['pull_requests']} pull requests after one warm-up, opened and pushed one at a time,"
        " each action after a random pause in [0, poll interval) so it falls at a random phase of the polling.",
        "p50 = median; with so few samples a p95 would be the max, so the max is shown.",
    ]
    return [table]
