"""The row-path imports timed as their users run them: one process per run, the clock started
at the command (benchmarks/as_process.py is each process), the job repository on the same
PostgreSQL database, 1M trade rows, chunks of 10,000.

- typed: the typed job (``DelimitedReader`` into ``Trade``, validation, ``PostgresCopyWriter``)
  against the hand-written typed loop (``csv.reader``, conversions into a tuple,
  ``copy.write_row``, a commit per 10,000), each a ``python`` process (goal <= 1.25);
- records: raw CSV records through ``PostgresCopyWriter(csv_records=True)`` against psql's
  ``\\copy`` of the file (goal <= 1.4), and against the hand-written raw loop with the same
  commits (10,000 lines a ``COPY``, a commit each, as a process; goal <= 1.25, as for the typed
  job): the second row is the engine's own cost, the note of the first what the chunks and a
  Python process cost before any engine.

The in-process benchmarks (typed_copy, copy_writer) start the clock inside a warm interpreter
with the engine built; the notes here give what a process spends before its first chunk (the
``engine ready`` moment: imports, ``Engine(url)``), which they do not see.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from benchmarks.bench_copy_writer import _psql
from benchmarks.bench_typed_copy import _check_loaded, _truncate, trades_database
from benchmarks.harness import Comparison, alternate, median
from benchmarks.trades import rows_for


def run(quick: bool) -> list[Comparison]:
    rows = rows_for(quick)
    with trades_database(rows, "bl_bench_proc") as (url, path):
        return _compare(url, path, rows)


def _compare(url: sa.URL, path: Path, rows: int) -> list[Comparison]:
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    repository = url.render_as_string(hide_password=False)
    runs = itertools.count(1)
    ready: dict[str, list[float]] = {k: [] for k in ("typed", "records", "hand", "hand_records")}

    def process(kind: str, url_text: str) -> None:
        argv = [sys.executable, "-m", "benchmarks.as_process", kind, url_text, str(path)]
        done = subprocess.run(
            [*argv, str(next(runs))],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
        )
        if done.returncode:
            raise AssertionError(f"{kind} process failed: {done.stderr[-2000:]}")
        marks = dict(line.rsplit(" ", 1) for line in done.stderr.splitlines() if " " in line)
        ready[kind].append(float(marks["engine ready"]))

    def psql_copy() -> None:
        command = f"\\copy bench_trades FROM '{path}' WITH (FORMAT csv, HEADER true)"
        subprocess.run([*_psql(url), "-c", command], check=True, capture_output=True)

    seconds = alternate(
        {
            "typed job": lambda: process("typed", repository),
            "hand loop": lambda: process("hand", dsn),
            "records job": lambda: process("records", repository),
            "hand records": lambda: process("hand_records", dsn),
            "psql": psql_copy,
        },
        repeats=3,
        setup=lambda label: _truncate(dsn),
        check=lambda label: _check_loaded(dsn, rows, label),
    )
    note = (
        f"{rows:,} rows, a process per run, chunks of 10,000; runs: "
        + ", ".join(f"{k} {'/'.join(f'{v:.2f}' for v in vs)}" for k, vs in seconds.items())
        + "; before the first chunk (imports, Engine): "
        + ", ".join(f"{k} {'/'.join(f'{v:.2f}' for v in vs)}" for k, vs in ready.items())
    )
    floor = median(seconds["hand records"]) / median(seconds["psql"])
    return [
        Comparison(
            "typed trades -> postgres, as a process",
            "`python job.py`: DelimitedReader(Trade) + validate + PostgresCopyWriter",
            "`python hand.py`: csv + conversions + COPY write_row",
            median(seconds["typed job"]),
            median(seconds["hand loop"]),
            "ratio <= 1.25",
            1.25,
            note=note,
        ),
        Comparison(
            "csv records -> postgres, as a process",
            "`python job.py`: CsvRecordReader + PostgresCopyWriter(csv_records)",
            "psql \\copy",
            median(seconds["records job"]),
            median(seconds["psql"]),
            "ratio <= 1.4",
            1.4,
            note=note
            + f"; the hand-written raw loop with the same commits is {floor:.2f}x psql \\copy",
        ),
        Comparison(
            "csv records -> postgres, as a process, against the same commits by hand",
            "`python job.py`: CsvRecordReader + PostgresCopyWriter(csv_records)",
            "`python hand.py`: 10,000 lines a COPY (FORMAT csv), a commit each",
            median(seconds["records job"]),
            median(seconds["hand records"]),
            "ratio <= 1.25",
            1.25,
            note=note,
        ),
    ]
