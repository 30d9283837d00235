"""Backfill overhead: 1,000 short instances through ``engine.backfill`` at concurrency 8
against ``engine.start`` called in a loop over the same values.

Each instance is one task step that does nothing, so every second measured is the framework's:
the baseline's per instance is what ``engine.start`` costs (launch, run, record); the
candidate's adds what the backfill's runner does on top (a ``new_instance_only`` launch, the
thread pool, following the executions, heartbeats of the backfill, reading its grid once at
the end). Both on one SQLite file by default (``BATCHLINE_BENCH_BACKFILL_URL`` for a server);
each run a new set of instances (a ``rep`` parameter). The figure is the ratio of the seconds
per instance, and the note gives the time the backfill adds per instance.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

from batchline import Engine, JobBuilder, StepBuilder
from benchmarks.harness import Comparison, side_by_side

CONCURRENCY = 8
GOAL = 1.5


def run(quick: bool) -> list[Comparison]:
    count = 100 if quick else 1000
    job = JobBuilder("bench_backfill").step(StepBuilder("noop").task(lambda se: None)).build()
    with tempfile.TemporaryDirectory() as folder:
        url = os.environ.get("BATCHLINE_BENCH_BACKFILL_URL") or f"sqlite:///{Path(folder) / 'r.db'}"
        with Engine(url, max_concurrent_jobs=CONCURRENCY) as engine:
            engine.register(job)
            reps = itertools.count()

            def backfill() -> None:
                state = engine.backfill(
                    job,
                    f"n:int=1..{count}",
                    parameters={"rep": f"b{next(reps)}"},
                    concurrency=CONCURRENCY,
                ).wait()
                assert state.counts == {"COMPLETED": count}, state.counts

            def loop() -> None:
                rep = f"l{next(reps)}"
                for n in range(1, count + 1):
                    engine.start(job, {"rep": rep, "n": n})

            backfill_s, loop_s = side_by_side(backfill, loop, repeats=2 if quick else 3)
    added_ms = (backfill_s - loop_s) / count * 1000
    return [
        Comparison(
            name=f"backfill {count} instances",
            candidate=f"engine.backfill, concurrency {CONCURRENCY}",
            baseline="engine.start in a loop",
            candidate_seconds=backfill_s / count * 1000,
            baseline_seconds=loop_s / count * 1000,
            unit="ms/instance",
            goal=f"ratio <= {GOAL}",
            goal_ratio=GOAL,
            note=(
                f"the backfill adds {added_ms:+.2f} ms per instance over engine.start "
                f"({backfill_s:.2f} s against {loop_s:.2f} s for {count} instances, best of runs)"
            ),
        )
    ]
