"""Steady-state cost with the real controller processes: what a converged cluster costs per interval.

K origins share two repositories (a monorepo serves several Deployments), each repository has
open pull requests, so every origin has clones and routes. After convergence — every clone and
route in place and no write for three poll intervals — the request logs of both emulators are
cleared and M poll intervals observed. Printed as measured: Kubernetes writes (non-GET verbs from
``world.kube.request_log``; Events are reported separately), GitHub requests counted against the
rate limit, and conditional requests answered 304. The design's claim: 0 writes, 0 counted
requests, one conditional request per repository per interval.
"""

from __future__ import annotations

import collections
import itertools
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import developer
from benchmarks.measure import Table
from controller_common import contract
from world import World

NAME = "steady-state-cost"
TITLE = "5. Steady-state cost (real controller processes, after convergence)"


@dataclass(frozen=True)
class Scenario:
    repositories: tuple[str, ...]
    origins: int
    prs_per_repository: int
    intervals: int
    poll_interval: float


CEILING_TITLE = "5b. GitHub polling ceiling (real replicator process, poll interval shorter than it can keep)"
IMAGE = "ghcr.io/mercari/{name}:1.0.0"
FULL = Scenario(("shop", "search"), origins=6, prs_per_repository=2, intervals=10, poll_interval=0.5)
QUICK = Scenario(("shop", "search"), origins=2, prs_per_repository=1, intervals=4, poll_interval=0.25)
CEILING = Scenario(("a", "b", "c", "d"), origins=4, prs_per_repository=0, intervals=30, poll_interval=0.1)
QUICK_CEILING = Scenario(("a", "b"), origins=2, prs_per_repository=0, intervals=10, poll_interval=0.1)
TIMEOUT = 60.0


def _converged(world: World, expected: dict[str, list[str]]) -> bool:
    deployments = {d["metadata"]["name"] for d in world.kube.objects("deployments", world.namespace)}
    routes: dict[str, set[str]] = {}
    for vs in world.kube.objects("virtualservices.networking.istio.io", world.namespace):
        routes[vs["metadata"]["name"]] = {str(r.get("name")) for r in vs["spec"].get("http") or []}
    return all(
        clone in deployments and f"{contract.MANAGED_ROUTE_PREFIX}{clone}" in routes.get(origin, set())
        for origin, clones in expected.items()
        for clone in clones
    )


def _quiet(world: World, seconds: float) -> bool:
    """No write (Events aside) in the last ``seconds``."""
    since = time.time() - seconds
    return not any(r.is_write and r.resource != "events" and r.at >= since for r in world.kube.request_log)


def _wait(condition: Any, world: World, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {TIMEOUT}s\n{world.logs()[-4000:]}")
        time.sleep(0.05)


@dataclass
class Observation:
    scenario: Scenario
    expected: dict[str, list[str]]
    converged_after: float
    window: float
    kube_log: list[Any]
    github_log: list[Any]

    def github_listings(self) -> list[Any]:
        return [r for r in self.github_log if r.path.endswith("/pulls") and r.method == "GET"]

    def listing_gaps(self) -> list[float]:
        listings = self.github_listings()
        return [
            later.at - earlier.at
            for path in {r.path for r in listings}
            for earlier, later in itertools.pairwise(
                sorted((r for r in listings if r.path == path), key=lambda r: r.at)
            )
        ]


def observe(scenario: Scenario) -> Observation:
    """Seed origins and pull requests, start both controllers, wait for convergence and quiet, observe."""
    interval = scenario.poll_interval
    with tempfile.TemporaryDirectory(prefix="bench-steady-") as tmp:
        world = World(Path(tmp)).start()
        try:
            repos = {}
            for name in scenario.repositories:
                world.create_repository(name)
                repos[name] = developer.repository(world, name)
            origin_repo: dict[str, str] = {}
            for k in range(scenario.origins):
                repo_name = scenario.repositories[k % len(scenario.repositories)]
                origin = f"{repo_name}-svc{k}"
                origin_repo[origin] = repo_name
                world.seed_origin(
                    origin, repository=f"https://github.com/mercari/{repo_name}", image=IMAGE.format(name=origin)
                )
            numbers: dict[str, list[int]] = {name: [] for name in scenario.repositories}
            for repo_name, repo in repos.items():
                main = repo.get_branch("main").commit.sha
                for p in range(scenario.prs_per_repository):
                    branch = f"feature-{p}"
                    repo.create_git_ref(f"refs/heads/{branch}", main)
                    world.push(repo, branch)
                    pull = repo.create_pull(title=f"Work on {branch}", head=branch, base="main")
                    numbers[repo_name].append(pull.number)
            expected = {
                origin: [contract.clone_name(origin, n) for n in numbers[repo_name]]
                for origin, repo_name in origin_repo.items()
            }
            world.start_controllers(poll_interval=interval)
            converge_started = time.monotonic()
            _wait(lambda: _converged(world, expected), world, "every clone and route")
            converged_after = time.monotonic() - converge_started
            _wait(lambda: _quiet(world, 3 * interval), world, "no writes for three poll intervals")

            world.kube.clear_request_log()
            world.github.clear_request_log()
            window_start = time.time()
            time.sleep(interval * scenario.intervals)
            window = time.time() - window_start
            kube_log = [r for r in world.kube.request_log if r.at >= window_start]
            github_log = [r for r in world.github.request_log if r.at >= window_start]
        finally:
            world.stop()
    return Observation(scenario, expected, converged_after, window, kube_log, github_log)


def run(*, quick: bool = False) -> list[Table]:
    steady = observe(QUICK if quick else FULL)
    return [steady_state_table(steady), ceiling_table(observe(QUICK_CEILING if quick else CEILING))]


def ceiling_table(seen: Observation) -> Table:
    scenario = seen.scenario
    repositories = len(scenario.repositories)
    table = Table(
        CEILING_TITLE,
        ["repositories", "poll interval s", "configured listings/s", "measured listings/s", "median gap per repo s"],
    )
    gaps = seen.listing_gaps()
    table.add(
        repositories,
        scenario.poll_interval,
        repositories / scenario.poll_interval,
        len(seen.github_listings()) / seen.window,
        statistics.median(gaps) if gaps else "-",
    )
    table.notes += [
        f"one origin per repository, no pull requests; window {seen.window:.2f} s after convergence.",
        "a poll interval too short for the repositories shows the replicator's own ceiling on GitHub requests per"
        " second, whatever the configured interval (with 60 s, the ceiling caps the repositories one replica polls).",
        "reads are paced by GitHub's limits (replicator.github_pacing: bursts of 60, then 10/s, inside the"
        " secondary limit of 900 a minute; a budget under a tenth spread to its reset), not a fixed sleep:"
        " on main at 3aa37de a fixed 0.25 s (--github-read-interval, now a floor defaulting to 0) capped this at 4/s.",
    ]
    return table


def steady_state_table(seen: Observation) -> Table:
    scenario, kube_log, github_log, window = seen.scenario, seen.kube_log, seen.github_log, seen.window
    interval, intervals = scenario.poll_interval, scenario.intervals
    expected, converged_after = seen.expected, seen.converged_after
    writes = [r for r in kube_log if r.is_write and r.resource != "events"]
    events = [r for r in kube_log if r.is_write and r.resource == "events"]
    reads = [r for r in kube_log if r.verb in ("get", "list")]
    counted = [r for r in github_log if r.counted_against_rate_limit]
    not_modified = [r for r in github_log if r.status == 304]
    conditional_lists = seen.github_listings()
    repositories = len(scenario.repositories)
    clones = sum(len(c) for c in expected.values())

    table = Table(TITLE, ["measured", f"over {intervals} intervals", "per interval", "design claim per interval"])
    table.add("Kubernetes writes (non-GET, Events excluded)", len(writes), len(writes) / intervals, "0")
    table.add("Kubernetes Events written", len(events), len(events) / intervals, "0")
    table.add("Kubernetes GET/LIST requests", len(reads), len(reads) / intervals, "-")
    table.add("GitHub requests, all", len(github_log), len(github_log) / intervals, "-")
    table.add("GitHub requests counted against rate limit", len(counted), len(counted) / intervals, "0")
    table.add("GitHub 304 Not Modified", len(not_modified), len(not_modified) / intervals, f"{repositories}")
    table.add(
        "GitHub pull listings per repository",
        len(conditional_lists),
        len(conditional_lists) / intervals / repositories,
        "1",
    )
    gaps = seen.listing_gaps()
    table.add(
        "median gap between one repository's listings, s",
        "-",
        statistics.median(gaps) if gaps else "-",
        f"{interval}",
    )
    breakdown = collections.Counter(f"{r.verb} {r.resource}" for r in writes)
    github_paths = collections.Counter(f"{r.method} {r.path} {r.status}" for r in github_log)
    table.notes += [
        f"{scenario.origins} origins sharing {repositories} repositories, {scenario.prs_per_repository} open pull"
        f" requests per repository ({clones} clones, each routed); poll interval {interval} s;"
        f" window {window:.2f} s = {intervals} intervals.",
        f"converged {converged_after:.2f} s after the controllers started; the window opened after three"
        " poll intervals without a write.",
        "writes by verb/resource: " + (", ".join(f"{k} x{v}" for k, v in sorted(breakdown.items())) or "none"),
        "GitHub requests: " + (", ".join(f"{k} x{v}" for k, v in sorted(github_paths.items())) or "none"),
    ]
    return table
