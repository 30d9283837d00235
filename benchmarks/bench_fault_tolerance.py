"""Fault tolerance costs little when nothing fails: retry+skip enabled vs the plain chunk step.

Both are batchline chunk steps over the same trivial reader, processor and writer, on the same
SQLite repository, alternated in one run.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path

from batchline import BatchStatus, Chunk, Engine, JobBuilder, StepBuilder
from batchline.faults import Backoff
from benchmarks.harness import Comparison, side_by_side


class CountingReader:
    def __init__(self, n: int) -> None:
        self.n = n
        self.i = 0

    def read(self) -> int | None:
        if self.i >= self.n:
            return None
        self.i += 1
        return self.i


class NullWriter:
    def __init__(self) -> None:
        self.count = 0

    def write(self, items: Sequence[int], chunk: Chunk) -> None:
        self.count += len(items)


def _step(name: str, n: int, tolerant: bool) -> StepBuilder:
    builder = (
        StepBuilder(name)
        .chunk(1000)
        .reader(lambda _: CountingReader(n))
        .processor(lambda x: x + 1)
        .writer(NullWriter())
    )
    if tolerant:
        builder = builder.retry([ConnectionError], limit=3, backoff=Backoff.none()).skip(
            [ValueError], limit=100
        )
    return builder


def run(quick: bool) -> list[Comparison]:
    n = 50_000 if quick else 1_000_000
    runs = itertools.count()
    with tempfile.TemporaryDirectory() as folder:
        engine = Engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        plain = JobBuilder("plain").step(_step("plain", n, False)).build()
        tolerant = JobBuilder("tolerant").step(_step("tolerant", n, True)).build()

        def go(job: object) -> None:
            execution = engine.start(job, {"run": next(runs)})  # type: ignore[arg-type]
            assert execution.status is BatchStatus.COMPLETED

        cand, base = side_by_side(lambda: go(tolerant), lambda: go(plain), repeats=5)
        engine.close()
    return [
        Comparison(
            name=f"fault tolerance, clean run ({n:,} items)",
            candidate="retry+skip on",
            baseline="plain chunk step",
            candidate_seconds=cand,
            baseline_seconds=base,
            goal="ratio <= 1.10",
            goal_ratio=1.10,
        )
    ]
