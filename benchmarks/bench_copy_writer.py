"""CSV (1M rows, 10 columns) into PostgreSQL: batchline's COPY writer, side by side with the
limit (psql's ``\\copy`` of the same file) and with what people write today (a psycopg
``executemany`` script committing every COMMIT_INTERVAL rows, as the batchline job does).

The candidates are real batchline jobs: an Engine whose job repository is on the same
PostgreSQL database, a chunk step of COMMIT_INTERVAL items and PostgresCopyWriter, so the
progress of each chunk commits with its rows. Two readers, both restartable by byte offset:

- records: CsvRecordReader passes each raw CSV record through and PostgreSQL parses it, as
  ``\\copy`` does (``csv_records=True``);
- parsed: DelimitedReader parses every record with the csv module (items as lists of strings,
  field counts checked, errors per line and field) and the writer sends COPY text.
"""

from __future__ import annotations

import csv
import itertools
import os
import random
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
import sqlalchemy as sa

from batchline import BatchStatus, Engine, JobBuilder, StepBuilder
from batchline.items.files.delimited import DelimitedReader
from batchline.items.files.mapping import ListMapper
from batchline.items.files.records import CsvRecordReader
from batchline.items.postgres_copy import PostgresCopyWriter
from benchmarks.harness import Comparison, alternate, median
from benchmarks.trades import rows_for

ADMIN_URL = os.environ.get(
    "BATCHLINE_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
COMMIT_INTERVAL = 10_000
TABLE = "bench_rows"
COLUMNS = [
    "id",
    "name",
    "email",
    "amount",
    "qty",
    "created",
    "updated",
    "active",
    "country",
    "note",
]
DDL = f"""CREATE TABLE {TABLE} (
    id bigint, name text, email text, amount numeric(12, 2), qty integer, created date,
    updated timestamp, active boolean, country text, note text)"""


def make_csv(path: Path, rows: int) -> None:
    """A CSV file with a header and ``rows`` rows of mixed types, some fields quoted."""
    rng = random.Random(7)
    countries = ["FR", "DE", "US", "JP", "BR"]
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        for i in range(rows):
            out.writerow(
                [
                    i,
                    f"Name {rng.randrange(100_000)}",
                    f"user{i}@example.com",
                    f"{rng.random() * 10_000:.2f}",
                    rng.randrange(1000),
                    f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
                    f"2024-05-{i % 28 + 1:02d} {i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}",
                    "true" if i % 3 else "false",
                    countries[i % 5],
                    "a note, with a comma" if i % 10 == 0 else f"note {i % 97}",
                ]
            )


def run(quick: bool) -> list[Comparison]:
    rows = rows_for(quick)
    repeats = 3
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"bl_bench_copy_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(ADMIN_URL).set(database=name)
    try:
        with tempfile.TemporaryDirectory(prefix="bl-bench-") as folder:
            path = Path(folder) / "rows.csv"
            make_csv(path, rows)
            return _compare(url, path, rows, repeats)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _compare(url: sa.URL, path: Path, rows: int, repeats: int) -> list[Comparison]:
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(DDL)  # type: ignore[arg-type]
    runs = itertools.count(1)
    with Engine(url.render_as_string(hide_password=False)) as engine:
        records = (
            StepBuilder("load")
            .chunk(COMMIT_INTERVAL)
            .reader(lambda se: CsvRecordReader(str(path)))
            .writer(PostgresCopyWriter(TABLE, COLUMNS, csv_records=True))
        )
        parsed = (
            StepBuilder("load")
            .chunk(COMMIT_INTERVAL)
            .reader(lambda se: DelimitedReader(str(path), mapper=ListMapper()))
            .writer(PostgresCopyWriter(TABLE, COLUMNS))
        )
        parsed_serial = (
            StepBuilder("load")
            .chunk(COMMIT_INTERVAL)
            .reader(lambda se: DelimitedReader(str(path), mapper=ListMapper()))
            .writer(PostgresCopyWriter(TABLE, COLUMNS))
            .read_ahead(False)
        )
        jobs = {
            "records": JobBuilder("bench_copy_records").step(records).build(),
            "parsed": JobBuilder("bench_copy_parsed").step(parsed).build(),
            "parsed, no read-ahead": JobBuilder("bench_copy_serial").step(parsed_serial).build(),
        }

        def job(name: str) -> None:
            execution = engine.start(jobs[name], {"run": next(runs)})
            assert execution.status is BatchStatus.COMPLETED, execution.exit_status

        def psql_copy() -> None:
            command = f"\\copy {TABLE} FROM '{path}' WITH (FORMAT csv, HEADER true)"
            subprocess.run([*_psql(url), "-c", command], check=True, capture_output=True)

        with path.open("rb") as f:  # the floor's input, read before any timing
            data = f.read().split(b"\n", 1)[1]
        blocks = _blocks(data, COMMIT_INTERVAL)
        del data
        contenders = {
            "records": lambda: job("records"),
            "parsed": lambda: job("parsed"),
            "parsed, no read-ahead": lambda: job("parsed, no read-ahead"),
            "copy": psql_copy,
            "floor": lambda: _chunked_copy(dsn, blocks),
            "executemany": lambda: _executemany(dsn, path),
        }
        seconds = alternate(
            contenders,
            repeats=repeats,
            setup=lambda label: _truncate(dsn),
            check=lambda label: _check_loaded(dsn, rows, label),
            fewer={"executemany": 1, "floor": 2},  # executemany is 5x off its goal: once
        )
        best = {label: median(values) for label, values in seconds.items()}
    runs_text = ", ".join(
        f"{label} {'/'.join(f'{v:.2f}' for v in values)}" for label, values in seconds.items()
    )
    note = (
        f"{rows:,} rows x {len(COLUMNS)} columns, commit every {COMMIT_INTERVAL:,}; medians of "
        f"the runs: {runs_text}"
    )
    goals = {"records": 1.4, "parsed": 1.8}
    names = {
        "records": "batchline job (CsvRecordReader + PostgresCopyWriter csv_records)",
        "parsed": "batchline job (DelimitedReader + PostgresCopyWriter)",
    }
    out = [
        Comparison(
            "csv -> postgres COPY, parsed, read-ahead",
            names["parsed"],
            "the same job with read_ahead(False)",
            best["parsed"],
            best["parsed, no read-ahead"],
            "(what reading ahead gives)",
            float("inf"),
            note=note,
        ),
        Comparison(
            "csv -> postgres COPY, the floor of chunks",
            "hand: the file's records in memory, COPY + commit per chunk",
            "psql \\copy",
            best["floor"],
            best["copy"],
            "(what chunk commits alone cost)",
            float("inf"),
            note=note,
        ),
    ]
    for label, name in names.items():
        out.append(
            Comparison(
                f"csv -> postgres COPY, {label}",
                name,
                "psql \\copy",
                best[label],
                best["copy"],
                f"ratio <= {goals[label]}",
                goals[label],
                note=note,
            )
        )
        out.append(
            Comparison(
                f"csv -> postgres COPY, {label}, vs executemany",
                name,
                "psycopg executemany script",
                best[label],
                best["executemany"],
                "ratio < 1.0",
                1.0,
                note=note,
            )
        )
    return out


def _psql(url: sa.URL) -> list[str]:
    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", url.host or "127.0.0.1"]
    argv += ["-p", str(url.port or 5432), "-U", url.username or "postgres", url.database or ""]
    return argv


def _executemany(dsn: str, path: Path) -> None:
    """The hand-written loader: csv module, executemany, a commit every COMMIT_INTERVAL rows."""
    insert = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * 10)})"
    with psycopg.connect(dsn) as conn, path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        with conn.cursor() as cur:
            while batch := list(itertools.islice(reader, COMMIT_INTERVAL)):
                cur.executemany(insert, batch)  # type: ignore[arg-type]
                conn.commit()


def _blocks(data: bytes, size: int) -> list[bytes]:
    """``data`` (CSV records, one per line here) cut into blocks of ``size`` records."""
    lines = data.splitlines(keepends=True)
    return [b"".join(lines[i : i + size]) for i in range(0, len(lines), size)]


def _chunked_copy(dsn: str, blocks: list[bytes]) -> None:
    """No reading, no parsing: what COPY with a commit per chunk costs the server."""
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for block in blocks:
            statement = f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv)"
            with cur.copy(statement) as copy:  # type: ignore[arg-type]
                copy.write(block)
            conn.commit()


def _truncate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLE}")  # type: ignore[arg-type]
        conn.execute(f"VACUUM {TABLE}")  # type: ignore[arg-type]


def _check_loaded(dsn: str, rows: int, label: str) -> None:
    with psycopg.connect(dsn) as conn:
        found = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()  # type: ignore[arg-type]
    if found is None or found[0] != rows:
        raise AssertionError(f"{label} loaded {found} rows, expected {rows}")
