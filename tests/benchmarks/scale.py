"""Scale (issue 10): both controllers as processes, hundreds to thousands of environments.

One world per size: ``origins`` origins (Deployment, Service, VirtualService), one repository
each, ``prs`` pull requests per origin (environments = origins x prs). The replicator receives
signed webhooks (``--webhook-bind-address`` and a secret; one hook per repository); every other
flag is the default (poll interval 60 s unless ``BENCH_SCALE_POLL_INTERVAL``). In order:

1. **floor**: ``KubeClient`` doing the three writes of each environment (``scale_floor``),
   unbounded and with 2 threads, against the same emulator before the controllers start;
2. **burst**: every pull request opened at once (in the GitHub emulator's store, a webhook
   each) until every clone is routed; the end is the last route write by the service-router,
   read from the emulator's request log;
3. **latency**: with all of them present, more pull requests opened one at a time through the
   REST API, each decomposed into stages from the emulators' request logs and deliveries;
4. **steady state**: after quiet, a window of Kubernetes writes and GitHub requests; memory then;
5. **restart**: both stopped and started again, until each is idle with its queue empty (and the
   replicator has listed every repository once), counting the writes it made meanwhile.

Sizes are environment counts (``--sizes 100,1000,5000``: up to 100 origins, then 100 origins x
N/100), or ``ORIGINSxPRS``. The emulators run in this process: their cost (and this process's
probes) share the machine's cores with the controllers.
"""

from __future__ import annotations

import collections
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from github import Auth, Github

from benchmarks import scale_floor, scale_tables
from benchmarks.measure import Table
from benchmarks.scale_probe import WEBHOOK_SECRET, Controller, Idle, wait_idle
from benchmarks.scale_tables import ROUTE, STAGES
from controller_common import contract
from world import OWNER, World

NAME = "scale"
TITLE = scale_tables.TITLE
DEFAULT_SIZES = "100,1000"
MAX_ORIGINS = 100
DEVELOPER_TOKEN = "scale-developer-token"  # its own rate-limit bucket: the replicator's stays its own
VS_KEY = "virtualservices.networking.istio.io"


@dataclass(frozen=True)
class Size:
    origins: int
    prs_per_origin: int

    @property
    def environments(self) -> int:
        return self.origins * self.prs_per_origin


def parse_size(text: str) -> Size:
    """``1000`` -> 100 origins x 10; ``50`` -> 50 x 1; ``5x2`` -> 5 origins x 2 pull requests each."""
    text = text.strip().lower().replace("_", "").replace(",", "")
    if "x" in text:
        origins, _, prs = text.partition("x")
        size = Size(int(origins), int(prs))
    else:
        n = int(text)
        if n > MAX_ORIGINS and n % MAX_ORIGINS:
            raise ValueError(f"{n} environments: above {MAX_ORIGINS} use a multiple of {MAX_ORIGINS}, or ORIGINSxPRS")
        size = Size(min(n, MAX_ORIGINS), max(1, n // MAX_ORIGINS))
    if size.environments < 1:
        raise ValueError(f"size {text!r} has no environment")
    return size


def parse_sizes(text: str) -> list[Size]:
    return [parse_size(part) for part in text.split(",") if part.strip()]


@dataclass(frozen=True)
class Options:
    poll_interval: float | None  # None: the replicator's default (60 s), not passed
    steady_seconds: float
    samples: int
    stable_seconds: float
    timeout: float

    @classmethod
    def from_environment(cls, base: Options) -> Options:
        def number(name: str, default: float | None) -> Any:
            value = os.environ.get(name)
            return default if not value else float(value)

        return cls(
            poll_interval=number("BENCH_SCALE_POLL_INTERVAL", base.poll_interval),
            steady_seconds=number("BENCH_SCALE_STEADY_SECONDS", base.steady_seconds),
            samples=int(number("BENCH_SCALE_SAMPLES", base.samples)),
            stable_seconds=number("BENCH_SCALE_STABLE_SECONDS", base.stable_seconds),
            timeout=number("BENCH_SCALE_TIMEOUT", base.timeout),
        )


FULL = Options(poll_interval=None, steady_seconds=60.0, samples=30, stable_seconds=3.0, timeout=900.0)
QUICK = Options(poll_interval=1.0, steady_seconds=3.0, samples=3, stable_seconds=1.0, timeout=60.0)
QUICK_SIZES = [Size(5, 2)]


@dataclass
class Result:
    size: Size
    floor: dict[str, float] = field(default_factory=dict)
    burst: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, float]] = field(default_factory=list)
    memory: dict[str, tuple[float, float]] = field(default_factory=dict)
    steady: dict[str, float] = field(default_factory=dict)
    restart: dict[str, Idle] = field(default_factory=dict)
    restart_writes: dict[str, int] = field(default_factory=dict)
    restart_memory: dict[str, tuple[float, float]] = field(default_factory=dict)
    elapsed: float = 0.0


def _origins(size: Size) -> list[str]:
    return [f"svc{k:03d}" for k in range(size.origins)]


def _writes(log: Sequence[Any], since: float = 0.0, until: float = math.inf) -> list[Any]:
    return [r for r in log if r.is_write and r.resource != "events" and since <= r.at <= until]


def _agent(record: Any) -> str:
    return str(record.user_agent).partition("/")[0] or "other"


def _wait(condition: Callable[[], Any], *, timeout: float, what: str, world: World, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s\n{world.logs()[-6000:]}")
        time.sleep(interval)
    return value


def _quiet(world: World, seconds: float) -> bool:
    return not _writes(world.kube.request_log, since=time.time() - seconds)


def _routes(world: World) -> dict[str, set[str]]:
    return {
        vs["metadata"]["name"]: {str(r.get("name")) for r in vs["spec"].get("http") or []}
        for vs in world.kube.objects(VS_KEY, world.namespace)
    }


def _listed_every_repository(world: World, origins: Sequence[str], since: float) -> float | None:
    """When the last repository had its first pull listing after ``since`` (None: not all yet)."""
    first: dict[str, float] = {}
    for r in world.github.request_log:
        if r.method == "GET" and r.path.endswith("/pulls") and r.at >= since:
            first.setdefault(r.path, r.at)
    paths = [f"/repos/{OWNER}/{origin}/pulls" for origin in origins]
    return max(first[p] for p in paths) if all(p in first for p in paths) else None


def _idle_both(world: World, controllers: Sequence[Controller], origins: Sequence[str], options: Options) -> list[Idle]:
    def one(c: Controller) -> Idle:
        also: Callable[[], float | None] = lambda: 0.0  # noqa: E731
        if c.is_replicator:
            also = lambda: _listed_every_repository(world, origins, c.started_at)  # noqa: E731
        return wait_idle(c, stable=options.stable_seconds, timeout=options.timeout, also_done=also)

    with ThreadPoolExecutor(len(controllers)) as pool:
        return list(pool.map(one, controllers))


def _setup(world: World, size: Size, options: Options) -> tuple[dict[str, Any], list[str]]:
    world.github.add_token(DEVELOPER_TOKEN, login="developer")
    developer = Github(
        base_url=world.github.api_url,
        auth=Auth.Token(DEVELOPER_TOKEN),
        retry=None,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )
    org = developer.get_organization(OWNER)
    repos = {}
    for origin in _origins(size):
        repos[origin] = org.create_repo(origin)
        image = f"ghcr.io/{OWNER}/{origin}:1.0.0"
        world.seed_origin(origin, repository=f"https://github.com/{OWNER}/{origin}", image=image)
        for p in range(1, size.prs_per_origin + 1):
            world.github.push(OWNER, origin, f"feature-{p}")
    latency_branches = []
    for i in range(options.samples):
        origin = _origins(size)[i % size.origins]
        world.github.push(OWNER, origin, f"latency-{i}")
        latency_branches.append(origin)
    return repos, latency_branches


def _burst(world: World, size: Size, options: Options, result: Result) -> None:
    world.kube.clear_request_log()
    world.github.clear_request_log()
    store = world.github.store
    expected: dict[str, set[str]] = {}
    t0 = time.time()
    for origin in _origins(size):
        with store.lock:
            repo, sender = world.github.repo(OWNER, origin), store.user("developer")
            for p in range(1, size.prs_per_origin + 1):
                pull = store.create_pull(repo, sender=sender, title=f"Work {p}", head=f"feature-{p}", base="main")
                clone = contract.clone_name(origin, pull.number)
                expected.setdefault(origin, set()).add(contract.managed_route_name(clone))
    opened = time.time() - t0

    def routed() -> bool:
        routes = _routes(world)
        return all(names <= routes.get(origin, set()) for origin, names in expected.items())

    _wait(routed, timeout=options.timeout, what="every clone routed", world=world, interval=0.5)
    seen = time.time()
    writes = _writes(world.kube.request_log, since=t0, until=seen)
    routes = [r for r in writes if r.resource == "virtualservices" and _agent(r) == "service-router" and r.status < 300]
    end = max(r.at for r in routes)
    done = [r for r in writes if r.status < 300 and r.at <= end]
    github = [r for r in world.github.request_log if r.at <= end and r.token != DEVELOPER_TOKEN]
    result.burst = {
        "seconds": end - t0,
        "opened": opened,
        "writes": len(done),
        "conflicts": sum(1 for r in writes if r.status == 409 and r.at <= end),
        "failed": sum(1 for r in writes if r.status >= 400 and r.at <= end),
        "github": len(github),
        "github counted": sum(1 for r in github if r.counted_against_rate_limit),
        "breakdown": collections.Counter(f"{_agent(r)} {r.verb} {r.resource}" for r in done),
        "last deployment": max((r.at for r in done if r.resource == "deployments" and r.verb == "create"), default=t0)
        - t0,
    }


def _stage_times(world: World, origin: str, number: int, since: float, deliveries_before: int) -> dict[str, float]:
    kube = world.kube.request_log
    found: dict[str, float] = {}
    for d in world.github.deliveries[deliveries_before:]:
        repository = d.payload.get("repository", {}).get("name")
        if d.event == "pull_request" and d.payload.get("number") == number and repository == origin:
            found[STAGES[0]] = d.delivered_at
    path = f"/repos/{OWNER}/{origin}/pulls"
    fetched = [r.at for r in world.github.request_log if r.path == path and r.status == 200 and r.at >= since]
    if fetched:
        found[STAGES[1]] = min(fetched)
    # A create's URL names no object: the first successful create by the replicator after the
    # pull request opened is this clone's (samples are one at a time, after quiet).
    for stage, resource in ((STAGES[2], "deployments"), (STAGES[3], "services")):
        created = [
            r.at
            for r in kube
            if r.verb == "create" and r.resource == resource and r.status == 201 and _agent(r) == "replicator"
        ]
        if created and min(created) >= since:
            found[stage] = min(created)
    after = found.get(STAGES[3], since)
    routes = [
        r.at
        for r in kube
        if r.is_write
        and r.resource == "virtualservices"
        and r.name == origin
        and r.status < 300
        and _agent(r) == "service-router"
        and r.at >= after
    ]
    if routes and STAGES[3] in found:
        found[ROUTE] = min(routes)
    return {stage: at - since for stage, at in found.items()}


def _latency(world: World, repos: dict[str, Any], branches: Sequence[str], options: Options, result: Result) -> None:
    phase = random.Random(10)
    for i, origin in enumerate(branches):
        _wait(lambda: _quiet(world, 1.0), timeout=options.timeout, what="quiet before a sample", world=world)
        time.sleep(phase.uniform(0, 1.0))  # a random phase against the poller and the resync
        world.kube.clear_request_log()
        world.github.clear_request_log()
        before = len(world.github.deliveries)
        t0 = time.time()
        number = repos[origin].create_pull(title=f"Latency {i}", head=f"latency-{i}", base="main").number
        stages = _wait(
            lambda o=origin, n=number, s=t0, b=before: (lambda st: st if ROUTE in st else None)(
                _stage_times(world, o, n, s, b)
            ),
            timeout=options.timeout,
            what=f"route of {origin} PR {number}",
            world=world,
            interval=0.01,
        )
        result.samples.append(stages)


def _steady(world: World, controllers: Sequence[Controller], options: Options, result: Result) -> None:
    _wait(lambda: _quiet(world, 3 * options.stable_seconds), timeout=options.timeout, what="quiet", world=world)
    world.kube.clear_request_log()
    world.github.clear_request_log()
    start = time.time()
    time.sleep(options.steady_seconds)
    window = time.time() - start
    kube = [r for r in world.kube.request_log if r.at >= start]
    github = [r for r in world.github.request_log if r.at >= start]
    result.steady = {
        "window": window,
        "writes": len(_writes(kube)),
        "events": sum(1 for r in kube if r.is_write and r.resource == "events"),
        "github": len(github),
        "github non-304": sum(1 for r in github if r.status != 304),
        "github 304": sum(1 for r in github if r.status == 304),
    }
    result.memory = {c.name: c.memory_mb() for c in controllers}


def _restart(
    world: World, controllers: Sequence[Controller], origins: Sequence[str], options: Options, result: Result
) -> None:
    for c in controllers:
        c.stop()
    world.kube.clear_request_log()
    world.github.clear_request_log()
    for c in controllers:
        c.start()
    idle = _idle_both(world, controllers, origins, options)
    log = world.kube.request_log
    for c, i in zip(controllers, idle, strict=True):
        result.restart[c.name] = i
        mine = [r for r in _writes(log, since=c.started_at) if _agent(r) == c.name]
        result.restart_writes[c.name] = len(mine)
        result.restart_writes[f"{c.name} events"] = sum(
            1 for r in log if r.is_write and r.resource == "events" and _agent(r) == c.name
        )
        result.restart_memory[c.name] = c.memory_mb()


def measure(size: Size, options: Options) -> Result:
    result = Result(size)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        world = World(Path(tmp)).start()
        try:
            repos, branches = _setup(world, size, options)
            origins = _origins(size)
            for label, threads in (("unbounded", None), ("2 threads", 2)):
                result.floor[label] = scale_floor.measure(
                    world, origins=origins, prs_per_origin=size.prs_per_origin, threads=threads
                )
            replicator = Controller("replicator", "replicator", world, options.poll_interval)
            router = Controller("service-router", "service_router", world)
            controllers = [replicator, router]
            for c in controllers:
                c.start()
            _wait(replicator.listening, timeout=60, what="the webhook receiver listens", world=world)
            for repo in repos.values():
                repo.create_hook(
                    "web",
                    {"url": replicator.webhook_url, "content_type": "json", "secret": WEBHOOK_SECRET},
                    ["pull_request"],
                )
            _idle_both(world, controllers, origins, options)
            _burst(world, size, options, result)
            _latency(world, repos, branches, options, result)
            _steady(world, controllers, options, result)
            _restart(world, controllers, origins, options, result)
        finally:
            world.stop()
    result.elapsed = time.perf_counter() - started
    return result


def run(*, quick: bool = False, sizes: Sequence[str] | None = None) -> list[Table]:
    options = Options.from_environment(QUICK if quick else FULL)
    chosen = QUICK_SIZES if quick and not sizes else parse_sizes(",".join(sizes or [DEFAULT_SIZES]))
    results = []
    for size in chosen:
        results.append(result := measure(size, options))
        # The tables come after the last size; a long run says what it has so far.
        print(
            f"  (scale: {size.environments:,} environments in {result.elapsed:.0f} s:"
            f" burst {result.burst['seconds']:.1f} s,"
            f" floor {result.floor['unbounded']:.1f} s, restart {result.restart['replicator'].seconds:.1f} /"
            f" {result.restart['service-router'].seconds:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return scale_tables.tables(results, options)
