"""The scale benchmark's printed tables: the issue-10 figures with goals, latency by stage, growth.

Every figure is computed from one run's measurements (``scale.Result``); the goals are the
issue's and are printed next to the figures, never checked. The growth table shows how each
figure moves from one size to the next and the exponent k in "figure ~ environments^k" between
the smallest and the largest size (1 = linear, 2 = quadratic).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from benchmarks.measure import Figure, Table, percentile
from benchmarks.scale_floor import UNBOUNDED_MAX_THREADS

if TYPE_CHECKING:
    from benchmarks.scale import Options, Result

TITLE = "7. Scale: burst, latency by stage, restart, memory, steady state (issue 10; both controllers as processes)"
STAGES = ("webhook received", "GitHub fetched (200)", "clone Deployment written", "clone Service written")
ROUTE = "route written"
GROWTH_TITLE = "7c. Scale: growth with the number of environments"
STAGES_TITLE = "7b. Scale: webhook-delivered PR -> route, by stage (ms after create_pull)"


def _route_ms(result: Result, pct: float) -> float:
    values = [s["route written"] * 1e3 for s in result.samples]
    return percentile(values, pct) if values else math.nan


def _restart(result: Result, name: str) -> Figure:
    idle = result.restart[name]
    return f">{idle.seconds:.0f}" if idle.timed_out else idle.seconds


ROWS: list[tuple[str, Callable[[Result], Figure], str]] = [
    ("burst: all PRs opened -> every clone routed, s", lambda r: r.burst["seconds"], "<= 2x the unbounded floor"),
    ("  raw floor, unbounded threads, s", lambda r: r.floor["unbounded"], "-"),
    ("  raw floor, 2 threads, s", lambda r: r.floor["2 threads"], "-"),
    ("  ratio floor (unbounded) / burst", lambda r: r.floor["unbounded"] / r.burst["seconds"], ">= 0.5"),
    ("  ratio floor (2 threads) / burst", lambda r: r.floor["2 threads"] / r.burst["seconds"], "-"),
    ("  last clone Deployment created, s", lambda r: r.burst["last deployment"], "-"),
    ("  Kubernetes writes per environment", lambda r: r.burst["writes"] / r.size.environments, "3 (the floor's)"),
    ("  409 Conflicts", lambda r: r.burst["conflicts"], "0"),
    ("  replicator GitHub requests (counted)", lambda r: r.burst["github counted"], "-"),
    ("webhook PR -> route in the VirtualService, p50 ms", lambda r: _route_ms(r, 50), "< 300 at 1,000"),
    ("webhook PR -> route in the VirtualService, p99 ms", lambda r: _route_ms(r, 99), "< 1,000 at 1,000"),
    ("restart, converged: replicator idle after, s", lambda r: _restart(r, "replicator"), "< 15 at 1,000"),
    ("restart, converged: service-router idle after, s", lambda r: _restart(r, "service-router"), "< 15 at 1,000"),
    ("  replicator writes during restart", lambda r: r.restart_writes["replicator"], "0"),
    ("  service-router writes during restart", lambda r: r.restart_writes["service-router"], "0"),
    (
        "  Events written during restart",
        lambda r: r.restart_writes["replicator events"] + r.restart_writes["service-router events"],
        "-",
    ),
    ("RSS settled, replicator MB", lambda r: r.memory["replicator"][0], "< 150 at 5,000"),
    ("RSS settled, service-router MB", lambda r: r.memory["service-router"][0], "< 150 at 5,000"),
    ("  peak RSS (VmHWM) before restart, replicator MB", lambda r: r.memory["replicator"][1], "-"),
    ("  peak RSS (VmHWM) before restart, service-router MB", lambda r: r.memory["service-router"][1], "-"),
    ("  RSS after restart idle, replicator MB", lambda r: r.restart_memory["replicator"][0], "-"),
    ("  RSS after restart idle, service-router MB", lambda r: r.restart_memory["service-router"][0], "-"),
    ("steady state: Kubernetes writes (Events excluded)", lambda r: r.steady["writes"], "0"),
    ("steady state: GitHub requests not answered 304", lambda r: r.steady["github non-304"], "0"),
    ("steady state: GitHub 304s", lambda r: r.steady["github 304"], "-"),
    ("run time of this size, s", lambda r: r.elapsed, "-"),
]

GROWTH = [
    "burst: all PRs opened -> every clone routed, s",
    "  raw floor, unbounded threads, s",
    "  raw floor, 2 threads, s",
    "webhook PR -> route in the VirtualService, p50 ms",
    "webhook PR -> route in the VirtualService, p99 ms",
    "restart, converged: replicator idle after, s",
    "restart, converged: service-router idle after, s",
    "RSS settled, replicator MB",
    "RSS settled, service-router MB",
]


def _column(result: Result) -> str:
    return f"{result.size.environments:,} env ({result.size.origins}x{result.size.prs_per_origin})"


def figures_table(results: Sequence[Result], options: Options) -> Table:
    table = Table(TITLE, ["figure", *(_column(r) for r in results), "goal"])
    for label, value, goal in ROWS:
        table.add(label, *(_finite(value(r)) for r in results), goal)
    poll = "default (60 s)" if options.poll_interval is None else f"{options.poll_interval} s"
    table.notes += [
        f"one repository per origin, signed webhooks (one hook per repository, pull_request events), poll interval"
        f" {poll}, every other flag the default; {options.samples} latency samples opened one at a time after the"
        " burst (so up to that many environments more), each after quiet and a random pause in [0, 1) s.",
        "burst: from the first pull request opened in the emulator's store (one webhook each, delivered in order by"
        " one thread) to the service-router's last successful VirtualService write; writes per environment count"
        " successful non-Event writes of both controllers, the floor's being exactly 3.",
        "floor: KubeClient creates the Deployment, creates the Service and JSON-patches the route into the"
        " VirtualService, per environment, one client per thread ('unbounded': one thread per environment, at most"
        f" {UNBOUNDED_MAX_THREADS}: 1,000 connections at once overflow the emulator's accept backlog), in a"
        " namespace of its own deleted before the controllers start.",
        "restart: both stopped (SIGTERM) once converged, started again; idle = /readyz 200, workqueue_depth 0 and"
        f" reconcile_total unchanged for {options.stable_seconds} s (and, for the replicator, every repository"
        " listed once since its start); the figure is the last activity seen (polled every 0.25 s) after start.",
        f"steady state: a {options.steady_seconds:.0f} s window after {3 * options.stable_seconds:.0f} s without a"
        " write; RSS (VmRSS of /proc/<pid>/status, MB = 10^6 bytes) read at the end of the window.",
    ]
    for r in results:
        breakdown = ", ".join(f"{k} x{v}" for k, v in sorted(r.burst["breakdown"].items()))
        table.notes.append(
            f"{_column(r)}: PRs opened in {r.burst['opened']:.2f} s; burst writes {breakdown};"
            f" failed writes {r.burst['failed']}; steady window {r.steady['window']:.1f} s with"
            f" {r.steady['github']} GitHub requests and {r.steady['events']} Events."
        )
    return table


def stages_table(results: Sequence[Result]) -> Table:
    table = Table(STAGES_TITLE, ["size", "stage", "n", "p50 since PR", "p99 since PR", "p50 of stage", "p99 of stage"])
    order = [*STAGES, ROUTE]
    for r in results:
        for index, stage in enumerate(order):
            since = [s[stage] * 1e3 for s in r.samples if stage in s]
            # The stage's own duration: from the previous stage the sample reached.
            own = []
            for s in r.samples:
                if stage in s:
                    earlier = [s[p] for p in order[:index] if p in s]
                    own.append(max(0.0, s[stage] - (max(earlier) if earlier else 0.0)) * 1e3)
            if not since:
                table.add(_column(r), stage, 0, "-", "-", "-", "-")
                continue
            table.add(
                _column(r),
                stage,
                len(since),
                percentile(since, 50),
                percentile(since, 99),
                percentile(own, 50),
                percentile(own, 99),
            )
    table.notes += [
        "webhook received: the GitHub emulator's delivery answered 202 (its completion time); GitHub fetched: the"
        " first pull listing of the repository answered 200 (the request's arrival); clone Deployment / Service"
        " written: the first successful create of each by the replicator; route written: the service-router's"
        " first successful write of the origin's VirtualService after that (all from the emulators' request logs,"
        " recorded before the answer is sent, same clock).",
        "a stage's own time is measured from the latest earlier stage (0 when it began before that one ended: the"
        " replicator may list the repository before the delivery's answer reaches GitHub); p99 is the nearest-rank"
        " value, the maximum with fewer than 100 samples.",
    ]
    return table


def growth_table(results: Sequence[Result]) -> Table:
    pairs = list(itertools.pairwise(results))
    columns = ["figure", *(f"x from {a.size.environments:,} to {b.size.environments:,}" for a, b in pairs)]
    table = Table(GROWTH_TITLE, [*columns, "k (figure ~ n^k)"])
    rows = {label: value for label, value, _ in ROWS}
    first, last = results[0], results[-1]
    for label in GROWTH:
        value = rows[label]
        ratios = [_ratio(value(b), value(a)) for a, b in pairs]
        overall = _ratio(value(last), value(first))
        n_ratio = last.size.environments / first.size.environments
        k: Figure = math.log(overall) / math.log(n_ratio) if isinstance(overall, float) and overall > 0 else "-"
        table.add(label.strip(), *ratios, k)
    table.notes += [
        "x = figure at the larger size / figure at the smaller; k between the smallest and the largest size.",
        "a figure that did not finish (restart timed out) or is 0 gives '-'.",
    ]
    return table


def tables(results: Sequence[Result], options: Options) -> list[Table]:
    out = [figures_table(results, options), stages_table(results)]
    if len(results) > 1:
        out.append(growth_table(results))
    return out


def _ratio(b: Figure, a: Figure) -> Figure:
    if isinstance(a, int | float) and isinstance(b, int | float) and a > 0 and math.isfinite(a) and math.isfinite(b):
        return float(b) / float(a)
    return "-"


def _finite(value: Figure) -> Figure:
    return "-" if isinstance(value, float) and not math.isfinite(value) else value
