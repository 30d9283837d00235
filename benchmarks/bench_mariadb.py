"""The typed trade import into MariaDB: ``SqlWriter`` against a hand-written ``executemany``.

The job is bench_typed_copy's (DelimitedReader into the Trade dataclass, the validating
processor, chunks of 10,000), writing with ``SqlWriter`` (default batch size) into a table of
the same MariaDB database as the job repository, so each chunk's rows and progress commit
together. The baseline is the loop a person writes with PyMySQL: ``csv.reader``, the same
conversions and checks into tuples, ``cursor.executemany`` of the chunk, a commit per chunk.
Both end in one multi-row INSERT per batch: PyMySQL renders the baseline's, SqlWriter renders
its own (items/mysql_values.py). The fastest path the server documents, ``LOAD DATA LOCAL
INFILE`` (the server's ``local_infile`` ON, the client's ``?local_infile=1``), is timed as a
job with ``MySqlLoadDataWriter`` and by hand on the same chunks (each converted chunk written
to a temporary CSV file).
"""

from __future__ import annotations

import csv
import itertools
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pymysql
import sqlalchemy as sa

from batchline import BatchStatus, Engine, JobBuilder, StepBuilder
from batchline.items.files.delimited import DelimitedReader
from batchline.items.mysql_load import MySqlLoadDataWriter
from batchline.items.sql_writers import SqlWriter
from benchmarks.harness import Comparison, alternate, median
from benchmarks.trades import (
    COLUMNS,
    COMMIT_INTERVAL,
    Trade,
    convert_and_validate,
    make_trades,
    rows_for,
    validate,
)

ADMIN_URL = os.environ.get("BATCHLINE_BENCH_MARIADB", "mariadb+pymysql://root@127.0.0.1:3306/test")
TABLE = "bench_trades"
INSERT = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * 10)})"
GOAL = 1.1


def table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        TABLE,
        metadata,
        sa.Column("trade_id", sa.BigInteger),
        sa.Column("trade_date", sa.Date),
        sa.Column("symbol", sa.String(12)),
        sa.Column("side", sa.String(4)),
        sa.Column("quantity", sa.Integer),
        sa.Column("price", sa.Numeric(12, 4)),
        sa.Column("currency", sa.String(3)),
        sa.Column("counterparty", sa.String(100)),
        sa.Column("settle_date", sa.Date),
        sa.Column("notional", sa.Numeric(18, 4)),
        mysql_engine="InnoDB",
    )


def run(quick: bool) -> list[Comparison]:
    rows = rows_for(quick)
    repeats = 2
    admin = sa.create_engine(ADMIN_URL)
    name = f"bl_bench_{uuid.uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(ADMIN_URL).set(database=name).update_query_dict({"local_infile": "1"})
    try:
        with tempfile.TemporaryDirectory(prefix="bl-bench-") as folder:
            path = Path(folder) / "trades.csv"
            make_trades(path, rows)
            return _compare(url, path, rows, repeats, Path(folder))
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def _connect(url: sa.URL, **options: Any) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        database=url.database,
        **options,
    )


def hand_executemany(url: sa.URL, path: Path) -> None:
    conn = _connect(url)
    try:
        with path.open(newline="", encoding="utf-8") as f, conn.cursor() as cur:
            reader = csv.reader(f)
            next(reader)
            while batch := list(itertools.islice(reader, COMMIT_INTERVAL)):
                cur.executemany(INSERT, [convert_and_validate(row) for row in batch])
                conn.commit()
    finally:
        conn.close()


def hand_load_data(url: sa.URL, path: Path, folder: Path) -> None:
    """LOAD DATA LOCAL INFILE of each converted chunk, written as a CSV file."""
    conn = _connect(url, local_infile=True)
    chunk_file = folder / "chunk.csv"
    load = (
        f"LOAD DATA LOCAL INFILE %s INTO TABLE {TABLE} FIELDS TERMINATED BY ',' "
        f"OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n' ({', '.join(COLUMNS)})"
    )
    try:
        with path.open(newline="", encoding="utf-8") as f, conn.cursor() as cur:
            reader = csv.reader(f)
            next(reader)
            while batch := list(itertools.islice(reader, COMMIT_INTERVAL)):
                with chunk_file.open("w", newline="", encoding="utf-8") as out:
                    csv.writer(out, lineterminator="\n").writerows(
                        convert_and_validate(row) for row in batch
                    )
                cur.execute(load, (str(chunk_file),))
                conn.commit()
    finally:
        conn.close()


def _compare(url: sa.URL, path: Path, rows: int, repeats: int, folder: Path) -> list[Comparison]:
    target = table(sa.MetaData())
    repository = url.render_as_string(hide_password=False)

    def job_with(writer: object, name: str) -> object:
        step = (
            StepBuilder("load")
            .chunk(COMMIT_INTERVAL)
            .reader(lambda se: DelimitedReader(str(path), mapper=Trade))
            .processor(validate)
            .writer(writer)
        )
        return JobBuilder(name).step(step).build()

    job = job_with(SqlWriter(target), "bench_mariadb")
    load_job = job_with(MySqlLoadDataWriter(target), "bench_mariadb_load")
    runs = itertools.count(1)
    setup_engine = sa.create_engine(repository)
    with setup_engine.begin() as conn:
        target.create(conn)
    setup_engine.dispose()
    with Engine(repository) as engine:

        def batchline_job(which: Any = job) -> None:
            execution = engine.start(which, {"run": next(runs)})
            assert execution.status is BatchStatus.COMPLETED, execution.exit_status

        def truncate(label: str) -> None:
            conn = _connect(url)
            try:
                with conn.cursor() as cur:
                    cur.execute(f"TRUNCATE TABLE {TABLE}")
            finally:
                conn.close()

        def check(label: str) -> None:
            conn = _connect(url)
            try:
                with conn.cursor() as cur:
                    cur.execute(f"SELECT count(*) FROM {TABLE}")
                    found = cur.fetchone()
            finally:
                conn.close()
            if found is None or found[0] != rows:
                raise AssertionError(f"{label} loaded {found} rows, expected {rows}")

        seconds = alternate(
            {
                "job": batchline_job,
                "executemany": lambda: hand_executemany(url, path),
                "load job": lambda: batchline_job(load_job),
                "load data": lambda: hand_load_data(url, path, folder),
            },
            repeats=repeats,
            setup=truncate,
            check=check,
            fewer={"load data": 1},
        )
    job_s, many_s, load_job_s, load_s = (
        median(seconds[k]) for k in ("job", "executemany", "load job", "load data")
    )
    runs_text = ", ".join(
        f"{label} {'/'.join(f'{v:.2f}' for v in values)}" for label, values in seconds.items()
    )
    note = (
        f"{rows:,} typed rows, commit every {COMMIT_INTERVAL:,}, median of {repeats}: "
        f"{runs_text}. Fastest documented path: LOAD DATA LOCAL INFILE, as a job "
        f"(MySqlLoadDataWriter) {load_job_s:.2f} s, by hand {load_s:.2f} s "
        f"({load_s / many_s:.2f}x executemany)"
    )
    return [
        Comparison(
            "typed trades -> MariaDB",
            "job: DelimitedReader(Trade) + validate + SqlWriter",
            "hand-written PyMySQL executemany, same chunks",
            job_s,
            many_s,
            f"ratio <= {GOAL}",
            GOAL,
            note=note,
        ),
        Comparison(
            "typed trades -> MariaDB, LOAD DATA",
            "job: same reader and processor + MySqlLoadDataWriter",
            "hand-written PyMySQL executemany, same chunks",
            load_job_s,
            many_s,
            "(the fastest documented path)",
            float("inf"),
            note=note,
        ),
    ]
