"""Every benchmark still runs and produces its figures (with tiny sizes; no time is ever asserted)."""

from __future__ import annotations

import math

import pytest
from benchmarks import BENCHMARKS, load
from benchmarks.__main__ import main
from benchmarks.measure import Table
from benchmarks.scale import Size, parse_size

REAL_PROCESSES = {"end-to-end-latency", "steady-state-cost", "scale"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[pytest.mark.e2e] if n in REAL_PROCESSES else []) for n in BENCHMARKS],
)
def test_benchmark_produces_a_table_of_figures(name: str) -> None:
    tables = load(name).run(quick=True)
    assert tables and all(isinstance(t, Table) for t in tables)
    for table in tables:
        assert table.title and table.rows and table.notes, table.title
        for row in table.rows:
            assert len(row) == len(table.columns)
            figures = [v for v in row if isinstance(v, int | float)]
            assert figures, f"{table.title}: a row without a figure: {row}"
            assert all(math.isfinite(v) and v >= 0 for v in figures), row
        rendered = table.render()
        assert all(column in rendered for column in table.columns)


def test_steady_state_figures_are_computed_not_printed_constants() -> None:
    """The replicator's "writes in steady state" note carries the number the plan produced."""
    (table,) = [t for t in load("replicator-planning").run(quick=True) if "steady writes" in t.columns]
    steady = [row[table.columns.index("steady writes")] for row in table.rows]
    assert any(note.startswith(f"writes in steady state: {sum(steady)} ") for note in table.notes)


def test_command_line_prints_the_machine_then_the_named_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "router-planning"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("date:")
    assert "CPUs" in out and "python:" in out
    assert load("router-planning").TITLE in out
    assert load("replicator-planning").TITLE not in out


def test_command_line_lists_benchmarks_and_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in BENCHMARKS)
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-benchmark"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("text", "size"),
    [
        pytest.param("10", Size(10, 1), id="up-to-100-is-one-pr-per-origin"),
        pytest.param("100", Size(100, 1), id="hundred"),
        pytest.param("1000", Size(100, 10), id="thousand-is-100-origins-x-10"),
        pytest.param("5_000", Size(100, 50), id="underscores"),
        pytest.param("5x2", Size(5, 2), id="explicit-origins-x-prs"),
    ],
)
def test_scale_sizes_are_environments_or_origins_x_pull_requests(text: str, size: Size) -> None:
    assert parse_size(text) == size


def test_scale_rejects_a_size_it_cannot_split_into_100_origins() -> None:
    with pytest.raises(ValueError, match="multiple of 100"):
        parse_size("150")


def test_sizes_go_only_to_benchmarks_that_take_them(capsys: pytest.CaptureFixture[str]) -> None:
    """``--sizes`` is ignored by a benchmark whose ``run`` has no ``sizes`` parameter."""
    assert main(["--quick", "--sizes", "100", "router-planning"]) == 0
    assert load("router-planning").TITLE in capsys.readouterr().out
