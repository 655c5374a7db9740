"""The benchmark suite: performance is measured here, printed, and never asserted by a test.

Run by ``make bench`` (``python -m benchmarks`` with ``tests`` on the path). Each module is one
benchmark exposing ``NAME``, ``TITLE`` and ``run(*, quick: bool) -> list[Table]``; ``quick``
uses tiny sizes so ``tests/unit/test_benchmarks_smoke.py`` can check that every benchmark still
produces its figures. Modules are imported only when run, so naming one benchmark does not
load the others' dependencies (the emulators, lupa, the kubernetes client).
"""

from __future__ import annotations

import importlib
from types import ModuleType

BENCHMARKS: dict[str, str] = {
    "replicator-planning": "benchmarks.replicator_planning",
    "router-planning": "benchmarks.router_planning",
    "header-propagation": "benchmarks.header_propagation",
    "end-to-end-latency": "benchmarks.end_to_end_latency",
    "steady-state-cost": "benchmarks.steady_state_cost",
    "informer-memory": "benchmarks.informer_memory",
    "scale": "benchmarks.scale",
}
"""Benchmark name -> module, in the order ``make bench`` runs them."""


def load(name: str) -> ModuleType:
    module = importlib.import_module(BENCHMARKS[name])
    if name != module.NAME:
        raise RuntimeError(f"{BENCHMARKS[name]} calls itself {module.NAME!r}, registered as {name!r}")
    return module
