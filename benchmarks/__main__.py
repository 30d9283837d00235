"""``python -m benchmarks [--quick] [name ...]``: run the benchmarks, print a table of ratios."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from rich.console import Console
from rich.table import Table

import benchmarks
from benchmarks.harness import Comparison


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("names", nargs="*", help="bench_<name> modules to run (default: all)")
    args = parser.parse_args(argv)
    modules = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    if args.names:
        modules = [m for m in modules if m.removeprefix("bench_") in args.names or m in args.names]
    console = Console(width=max(Console().width, 150))
    results: list[Comparison] = []
    for name in modules:
        console.print(f"[bold]running {name}[/bold]")
        module = importlib.import_module(f"benchmarks.{name}")
        results.extend(module.run(args.quick))
    table = Table(title="batchline benchmarks (side by side; best or median, see the notes)")
    for column in (
        "benchmark",
        "candidate",
        "baseline",
        "cand.",
        "base",
        "ratio",
        "goal",
        "met",
    ):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.name,
            r.candidate,
            r.baseline,
            f"{r.candidate_seconds:.2f} {r.unit}",
            f"{r.baseline_seconds:.2f} {r.unit}",
            f"{r.ratio:.2f}x",
            r.goal,
            "yes" if r.met else "NO",
        )
    console.print(table)
    for r in results:
        if r.note:
            console.print(f"{r.name}: {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
