"""Every benchmark still runs and produces its figures (with tiny sizes; no time is ever asserted)."""

from __future__ import annotations

import math

import pytest
from benchmarks import BENCHMARKS, load
from benchmarks.__main__ import main
from benchmarks.measure import Table

REAL_PROCESSES = {"end-to-end-latency", "steady-state-cost"}


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
