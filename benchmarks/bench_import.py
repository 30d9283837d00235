"""What ``import batchline`` and ``batchline --help`` cost, against ``python -c pass``.

Each side is a fresh interpreter (the same one running the benchmarks, with the same
environment), run alternately, best of N. Three comparisons:

- the wall time of ``python -c "import batchline"``;
- the import time Python itself reports (``-X importtime``: the sum of the top-level
  entries' cumulative microseconds, which leaves out the interpreter's start-up);
- the wall time of ``batchline --help``, run as the console script runs it.

The goals are absolute (``import batchline`` under 0.25 s of import time, ``--help`` under
0.35 s of wall time); the baseline shows what an empty interpreter costs on the same machine.
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks.harness import Comparison, side_by_side

IMPORT_GOAL = 0.25
HELP_GOAL = 0.35

EMPTY = ["-c", "pass"]
IMPORT = ["-c", "import batchline"]
# What the installed ``batchline`` script does, so the working tree's code is what runs.
HELP = ["-c", "import sys; from batchline.cli import main; sys.exit(main())", "--help"]


def interpreter(arguments: list[str]) -> str:
    """Run a fresh interpreter; its stderr (where -X importtime writes)."""
    done = subprocess.run(
        [sys.executable, *arguments], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stderr


def import_seconds(arguments: list[str]) -> float:
    """The sum of the top-level imports' cumulative times that ``-X importtime`` reports."""
    total_us = 0
    for line in interpreter(["-X", "importtime", *arguments]).splitlines():
        _, cumulative, name = line.split("|")
        # "import time:   self |   cumulative | name", nested imports indented under theirs
        if cumulative.strip().isdigit() and not name.startswith("  "):
            total_us += int(cumulative)
    return total_us / 1e6


def best_import_time(arguments: list[str], repeats: int) -> float:
    return min(import_seconds(arguments) for _ in range(repeats))


def absolute(name: str, candidate: str, cand: float, base: float, goal: float) -> Comparison:
    """A Comparison whose goal is ``cand <= goal`` seconds, written as the matching ratio."""
    return Comparison(
        name=name,
        candidate=candidate,
        baseline="python -c pass",
        candidate_seconds=cand,
        baseline_seconds=base,
        goal=f"<= {goal:.2f} s",
        goal_ratio=goal / base,
        note=f"{cand * 1000:.0f} ms against {base * 1000:.0f} ms, goal {goal * 1000:.0f} ms",
    )


def run(quick: bool) -> list[Comparison]:
    repeats = 3 if quick else 10
    interpreter(IMPORT)  # warm-up, untimed: compile the bytecode, fill the page cache
    interpreter(HELP)
    wall_import, wall_empty = side_by_side(
        lambda: interpreter(IMPORT), lambda: interpreter(EMPTY), repeats=repeats
    )
    importtime, importtime_empty = (
        best_import_time(IMPORT, repeats),
        best_import_time(EMPTY, repeats),
    )
    wall_help, wall_empty_help = side_by_side(
        lambda: interpreter(HELP), lambda: interpreter(EMPTY), repeats=repeats
    )
    return [
        absolute(
            "import time (-X importtime)",
            "import batchline",
            importtime,
            importtime_empty,
            IMPORT_GOAL,
        ),
        absolute("import, wall", "import batchline", wall_import, wall_empty, IMPORT_GOAL),
        absolute(
            "batchline --help, wall", "batchline --help", wall_help, wall_empty_help, HELP_GOAL
        ),
    ]
