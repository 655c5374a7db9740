"""``python -m benchmarks [--quick] [--sizes N,...] [NAME ...]``: run the named benchmarks (default: all).

``--sizes`` (default ``$BENCH_SIZES``) goes to the benchmarks whose ``run`` takes ``sizes``; the others ignore it.
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from benchmarks import BENCHMARKS, load


def machine_header() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return "\n".join(
        [
            f"date:     {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}",
            f"machine:  {platform.platform()} ({platform.machine()}), {os.cpu_count()} CPUs,"
            f" load average {load} (other work on the machine moves the figures)",
            f"python:   {platform.python_implementation()} {platform.python_version()}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)}")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: checks the benchmarks run, figures mean little"
    )
    parser.add_argument(
        "--sizes",
        default=os.environ.get("BENCH_SIZES") or None,
        help="comma-separated sizes for the benchmarks that take them (scale: environments, e.g. 100,1000,5000)",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name in BENCHMARKS:
            print(f"{name:22} {load(name).TITLE}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    print(machine_header())
    if args.quick:
        print("mode:     --quick (tiny sizes; not figures to quote)")
    started = time.perf_counter()
    for name in args.names or list(BENCHMARKS):
        t0 = time.perf_counter()
        run = load(name).run
        sized = args.sizes and "sizes" in inspect.signature(run).parameters
        tables = run(quick=args.quick, sizes=args.sizes.split(",")) if sized else run(quick=args.quick)
        print()
        for table in tables:
            print(table.render())
        print(f"  ({name}: {time.perf_counter() - t0:.1f} s)")
        sys.stdout.flush()
    print(f"\ntotal: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
