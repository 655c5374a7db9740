"""Timing, statistics and the printed tables every benchmark shares.

A benchmark returns :class:`Table` objects (figures with their units in the column names, the
sizes in the rows, how they were measured in the notes); ``__main__`` prints them. Timing uses
``time.perf_counter`` and repeats a measurement until it has both a minimum number of samples
and a minimum total duration, so small cases are not dominated by timer noise and large ones
do not run for minutes.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Figure = int | float | str


@dataclass(frozen=True)
class Samples:
    """Durations in seconds of repeated runs of one operation (each run may do ``ops`` operations)."""

    seconds: tuple[float, ...]
    ops: int = 1

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) / self.ops

    @property
    def p95(self) -> float:
        return percentile(self.seconds, 95) / self.ops

    @property
    def per_second(self) -> float:
        return 1.0 / self.median if self.median > 0 else math.inf


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: the figure is a value that was measured)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def repeat(
    fn: Callable[[], object],
    *,
    ops: int = 1,
    min_runs: int = 5,
    max_runs: int = 200,
    min_seconds: float = 0.3,
    warmup: int = 1,
) -> Samples:
    """Time ``fn`` until ``min_runs`` and ``min_seconds`` are both reached (or ``max_runs``).

    Before a run that follows a long one (over 5 ms) the garbage left by the previous run is
    collected outside the timed region, so one run does not pay for another's garbage.
    """
    for _ in range(warmup):
        fn()
    durations: list[float] = []
    started = time.perf_counter()
    while len(durations) < max_runs and (len(durations) < min_runs or time.perf_counter() - started < min_seconds):
        if durations and durations[-1] > 0.005:
            gc.collect()
        t0 = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - t0)
    return Samples(tuple(durations), ops)


@dataclass
class Table:
    """One printed table: a title, columns (units in the names), rows of figures, and notes."""

    title: str
    columns: list[str]
    rows: list[list[Figure]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *row: Figure) -> None:
        if len(row) != len(self.columns):
            raise ValueError(f"{self.title}: row {row!r} does not match columns {self.columns!r}")
        self.rows.append(list(row))

    def render(self) -> str:
        cells = [self.columns, *[[_format(v) for v in row] for row in self.rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        # Text columns (a row label) are left-aligned, figures right-aligned.
        text = [bool(self.rows) and isinstance(self.rows[0][i], str) for i in range(len(self.columns))]
        lines = [self.title, "-" * len(self.title)]
        for index, row in enumerate(cells):
            aligned = [c.ljust(w) if t else c.rjust(w) for c, w, t in zip(row, widths, text, strict=True)]
            lines.append("  ".join(aligned).rstrip())
            if index == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines.extend(f"  {note}" for note in self.notes)
        return "\n".join(lines)


def _format(value: Figure) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if math.isinf(value):
            return "inf"
        magnitude = abs(value)
        if magnitude >= 100:
            return f"{value:,.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if magnitude >= 0.01 else f"{value:.2g}"
    if isinstance(value, int):
        return f"{value:,}"
    return value
