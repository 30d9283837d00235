"""The imports as users run them: one process per run, the clock started at the command.

``python -m benchmarks.as_process KIND URL FILE RUN`` where KIND is

- ``typed``: the typed job (``DelimitedReader`` into ``Trade``, the validating processor,
  ``PostgresCopyWriter``, chunks of 10,000), ``Engine(URL)``, ``engine.start``;
- ``records``: raw CSV records (``CsvRecordReader``) through ``PostgresCopyWriter`` with
  ``csv_records=True``, the same chunks;
- ``hand``: the hand-written typed loop (``csv.reader``, the conversions and checks into a
  tuple, ``copy.write_row``, a commit per 10,000 rows);
- ``hand_records``: the hand-written raw loop (10,000 lines of the file a ``COPY ... (FORMAT
  csv)``, a commit after each): what any process that commits as the records job does pays,
  with no job around it.

Each imports only what a user's script would: batchline's public names or psycopg and csv.
``BATCHLINE_PROCESS_PROFILE=FILE`` writes a cProfile of the run there.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

_STARTED = time.perf_counter()


def typed(url: str, path: Path, run: int) -> None:
    from batchline import DelimitedReader, PostgresCopyWriter, StepBuilder
    from benchmarks.trades import COLUMNS, COMMIT_INTERVAL, Trade, validate

    step = (
        StepBuilder("load")
        .chunk(COMMIT_INTERVAL)
        .reader(lambda se: DelimitedReader(str(path), mapper=Trade))
        .processor(validate)
        .writer(PostgresCopyWriter("bench_trades", COLUMNS))
    )
    _start(url, "typed_as_process", step, run)


def records(url: str, path: Path, run: int) -> None:
    from batchline import CsvRecordReader, PostgresCopyWriter, StepBuilder
    from benchmarks.trades import COLUMNS, COMMIT_INTERVAL

    step = (
        StepBuilder("load")
        .chunk(COMMIT_INTERVAL)
        .reader(lambda se: CsvRecordReader(str(path)))
        .writer(PostgresCopyWriter("bench_trades", COLUMNS, csv_records=True))
    )
    _start(url, "records_as_process", step, run)


def _start(url: str, name: str, step: Any, run: int) -> None:
    """The job of one step on ``Engine(url)``, as a user's script starts it."""
    from batchline import Engine, JobBuilder

    job = JobBuilder(name).step(step).build()
    with Engine(url) as engine:
        _mark("engine ready")
        execution = engine.start(job, {"run": run})
    if execution.status.name != "COMPLETED":
        raise SystemExit(f"{name}: {execution.exit_status}")


def hand(dsn: str, path: Path, run: int) -> None:
    import csv
    import itertools

    import psycopg

    from benchmarks.trades import COLUMNS, COMMIT_INTERVAL, convert_and_validate

    copy_sql = f"COPY bench_trades ({', '.join(COLUMNS)}) FROM STDIN"
    with psycopg.connect(dsn) as conn, path.open(newline="", encoding="utf-8") as f:
        _mark("engine ready")
        reader = csv.reader(f)
        next(reader)
        with conn.cursor() as cur:
            while batch := list(itertools.islice(reader, COMMIT_INTERVAL)):
                with cur.copy(copy_sql) as copy:  # type: ignore[arg-type]
                    for row in batch:
                        copy.write_row(convert_and_validate(row))
                conn.commit()


def hand_records(dsn: str, path: Path, run: int) -> None:
    import itertools

    import psycopg

    from benchmarks.trades import COLUMNS, COMMIT_INTERVAL

    # The trade file has no quoted newline: a line is a record, as the hand loop may assume.
    copy_sql = f"COPY bench_trades ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv)"
    with psycopg.connect(dsn) as conn, path.open("rb") as f:
        _mark("engine ready")
        next(f)
        with conn.cursor() as cur:
            while lines := list(itertools.islice(f, COMMIT_INTERVAL)):
                with cur.copy(copy_sql) as copy:  # type: ignore[arg-type]
                    copy.write(b"".join(lines))
                conn.commit()


def _mark(label: str) -> None:
    """A moment of the run on stderr, in seconds since the interpreter ran this module."""
    print(f"{label} {time.perf_counter() - _STARTED:.3f}", file=sys.stderr)


def main(argv: list[str]) -> None:
    kind, url, path, run = argv
    kinds = {"typed": typed, "records": records, "hand": hand, "hand_records": hand_records}
    profile = os.environ.get("BATCHLINE_PROCESS_PROFILE")
    if profile:
        import cProfile

        cProfile.runctx(
            "kinds[kind](url, Path(path), int(run))", globals(), locals(), filename=profile
        )
    else:
        kinds[kind](url, Path(path), int(run))
    _mark("done")


if __name__ == "__main__":
    main(sys.argv[1:])
