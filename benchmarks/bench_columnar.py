"""Columnar jobs (``StepBuilder.columnar``) against the fastest hand-written paths, side by side.

- CSV -> PostgreSQL: the trade file (benchmarks/trades.py, 1M rows x 10 columns) read by
  ``ArrowCsvReader`` with typed columns, validated by an Arrow filter (quantity > 0, side and
  currency in their sets, settlement not before the trade), written by ``PostgresCopyWriter``,
  100,000 rows a chunk, the repository on the same database; against psql's ``\\copy`` of the
  file (goal: ratio <= 1.0).
- Parquet -> Parquet: the same trades as Parquet, a computed column and a filter, through
  ``ArrowParquetReader`` and ``ArrowParquetWriter`` (repository on SQLite); against a hand
  loop: ``iter_batches``, the same compute, ``pq.ParquetWriter`` (goal <= 1.1).
- CSV -> MariaDB: the CSV job with ``MySqlLoadDataWriter``, the repository on the same
  database; against the mysql client's ``LOAD DATA LOCAL INFILE`` of the file (goal <= 1.1).
- Peak memory: the Parquet job's peak RSS (a process of its own) at 10x the rows against 1x
  (goal <= 1.1).
- dlt: the CSV -> PostgreSQL job against dlt's Arrow path (the same typed Arrow batches and
  filter, ``pipeline.run`` into PostgreSQL; goal: 5x faster), when dlt is installed (it is no
  dependency of batchline: ``pip install 'dlt[postgres]'``).

``BATCHLINE_BENCH_COLUMNAR=postgres,parquet,mariadb,memory,dlt`` runs only some of them.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

from batchline import BatchStatus, Engine, JobBuilder, StepBuilder
from batchline.items.arrow import ArrowCsvReader, ArrowParquetReader, ArrowParquetWriter
from batchline.items.mysql_load import MySqlLoadDataWriter
from batchline.items.postgres_copy import PostgresCopyWriter
from benchmarks.bench_copy_writer import _psql
from benchmarks.harness import Comparison, alternate, median
from benchmarks.trades import COLUMNS, make_trades, rows_for

POSTGRES = os.environ.get(
    "BATCHLINE_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB = os.environ.get("BATCHLINE_BENCH_MARIADB", "mariadb+pymysql://root@127.0.0.1:3306/test")
ROWS_PER_CHUNK = 100_000
TABLE = "bench_columnar"
SCHEMA = pa.schema(
    [
        ("trade_id", pa.int64()),
        ("trade_date", pa.date32()),
        ("symbol", pa.string()),
        ("side", pa.string()),
        ("quantity", pa.int32()),
        ("price", pa.decimal128(12, 4)),
        ("currency", pa.string()),
        ("counterparty", pa.string()),
        ("settle_date", pa.date32()),
        ("notional", pa.decimal128(18, 4)),
    ]
)
PG_DDL = f"""CREATE TABLE {TABLE} (
    trade_id bigint, trade_date date, symbol text, side text, quantity integer,
    price numeric(12, 4), currency text, counterparty text, settle_date date,
    notional numeric(18, 4))"""
MY_DDL = f"""CREATE TABLE {TABLE} (
    trade_id bigint, trade_date date, symbol varchar(16), side varchar(8), quantity integer,
    price decimal(12, 4), currency varchar(3), counterparty varchar(40), settle_date date,
    notional decimal(18, 4))"""
SIDES = pa.array(["BUY", "SELL"])
CURRENCIES = pa.array(["EUR", "USD", "GBP", "JPY", "CHF"])


def validate(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The trades a bank's import accepts (benchmarks/trades.py's checks, as one Arrow mask)."""
    mask = pc.and_(
        pc.and_(pc.greater(batch["quantity"], 0), pc.is_in(batch["side"], SIDES)),
        pc.and_(
            pc.is_in(batch["currency"], CURRENCIES),
            pc.greater_equal(batch["settle_date"], batch["trade_date"]),
        ),
    )
    return batch.filter(mask)


def enrich(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The Parquet job's compute: a gross column, and only the buys."""
    kept = batch.filter(pc.equal(batch["side"], "BUY"))
    gross = pc.multiply(
        pc.cast(kept["quantity"], pa.float64()), pc.cast(kept["price"], pa.float64())
    )
    return kept.append_column("gross", gross)


def selected() -> set[str]:
    chosen = os.environ.get("BATCHLINE_BENCH_COLUMNAR")
    every = {"postgres", "parquet", "mariadb", "memory", "dlt"}
    return set(chosen.split(",")) & every if chosen else every


def run(quick: bool) -> list[Comparison]:
    rows = rows_for(quick)
    out: list[Comparison] = []
    with tempfile.TemporaryDirectory(prefix="bl-bench-columnar-") as folder:
        path = Path(folder) / "trades.csv"
        make_trades(path, rows)
        which = selected()
        if "postgres" in which:
            out += _postgres(path, rows)
        if "parquet" in which:
            out += _parquet(path, Path(folder), rows)
        if "mariadb" in which:
            out += _mariadb(path, rows)
        if "memory" in which:
            out += _memory(Path(folder), rows)
        if "dlt" in which and importlib.util.find_spec("dlt") is not None:
            from benchmarks.columnar_dlt import against_dlt

            out += against_dlt(path, Path(folder), rows)
    return out


# --- CSV -> PostgreSQL ------------------------------------------------------------------------


def _postgres(path: Path, rows: int) -> list[Comparison]:
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    name = f"bl_bench_col_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(POSTGRES).set(database=name)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(PG_DDL)  # type: ignore[arg-type]
        runs = itertools.count(1)
        with Engine(url.render_as_string(hide_password=False)) as engine:
            step = (
                StepBuilder("load")
                .columnar(ROWS_PER_CHUNK)
                .reader(lambda se: ArrowCsvReader(str(path), schema=SCHEMA))
                .processor(validate)
                .writer(PostgresCopyWriter(TABLE, COLUMNS))
            )
            job = JobBuilder("bench_columnar_pg").step(step).build()

            def columnar() -> None:
                execution = engine.start(job, {"run": next(runs)})
                assert execution.status is BatchStatus.COMPLETED, execution.exit_status

            def psql_copy() -> None:
                command = f"\\copy {TABLE} FROM '{path}' WITH (FORMAT csv, HEADER true)"
                subprocess.run([*_psql(url), "-c", command], check=True, capture_output=True)

            def truncate(label: str) -> None:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"TRUNCATE {TABLE}")  # type: ignore[arg-type]

            def check(label: str) -> None:
                with psycopg.connect(dsn) as conn:
                    count = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()  # type: ignore[arg-type]
                assert count is not None and count[0] == rows, f"{label}: {count} rows"

            seconds = alternate(
                {"columnar": columnar, "copy": psql_copy},
                repeats=3,
                setup=truncate,
                check=check,
            )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
    return [
        Comparison(
            "csv -> postgres, columnar",
            "columnar job (ArrowCsvReader typed + Arrow filter + PostgresCopyWriter)",
            "psql \\copy",
            median(seconds["columnar"]),
            median(seconds["copy"]),
            "ratio <= 1.0",
            1.0,
            note=f"{rows:,} rows, {ROWS_PER_CHUNK:,} a chunk, repository on the database; "
            f"runs: {_runs(seconds)}",
        )
    ]


# --- Parquet -> Parquet -----------------------------------------------------------------------


def _trades_parquet(csv_path: Path, target: Path, repeat: int = 1) -> None:
    """The trade CSV as Parquet (``repeat`` times over), row groups of 100,000."""
    table = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(column_types=SCHEMA))
    with pq.ParquetWriter(target, table.schema) as writer:
        for _ in range(repeat):
            writer.write_table(table, row_group_size=100_000)


def _parquet_job(source: Path, target: Path) -> Any:
    step = (
        StepBuilder("convert")
        .columnar(ROWS_PER_CHUNK)
        .reader(lambda se: ArrowParquetReader(str(source)))
        .processor(enrich)
        .writer(lambda se: ArrowParquetWriter(str(target)))
    )
    return JobBuilder("bench_columnar_parquet").step(step).build()


def _hand_parquet(source: Path, target: Path) -> None:
    reader = pq.ParquetFile(source)
    writer: Any = None
    for batch in reader.iter_batches(batch_size=ROWS_PER_CHUNK):
        out = enrich(batch)
        if writer is None:
            writer = pq.ParquetWriter(target, out.schema)
        writer.write_batch(out)
    if writer is not None:
        writer.close()


def _parquet(csv_path: Path, folder: Path, rows: int) -> list[Comparison]:
    source, target, hand = folder / "in.parquet", folder / "out.parquet", folder / "hand.parquet"
    _trades_parquet(csv_path, source)
    runs = itertools.count(1)
    with Engine(f"sqlite:///{folder / 'repository.db'}") as engine:
        job = _parquet_job(source, target)

        def columnar() -> None:
            execution = engine.start(job, {"run": next(runs)})
            assert execution.status is BatchStatus.COMPLETED, execution.exit_status

        seconds = alternate(
            {"columnar": columnar, "hand": lambda: _hand_parquet(source, hand)},
            repeats=3,
        )
    written, expected = pq.read_metadata(target).num_rows, pq.read_metadata(hand).num_rows
    assert written == expected, f"the job wrote {written} rows, the hand loop {expected}"
    return [
        Comparison(
            "parquet -> parquet, columnar",
            "columnar job (ArrowParquetReader + compute + filter + ArrowParquetWriter)",
            "hand pyarrow loop (iter_batches, compute, ParquetWriter)",
            median(seconds["columnar"]),
            median(seconds["hand"]),
            "ratio <= 1.1",
            1.1,
            note=f"{rows:,} rows, {ROWS_PER_CHUNK:,} a chunk, repository on SQLite; "
            f"runs: {_runs(seconds)}",
        )
    ]


# --- CSV -> MariaDB ---------------------------------------------------------------------------


def _mariadb(path: Path, rows: int) -> list[Comparison]:
    admin = sa.create_engine(MARIADB, isolation_level="AUTOCOMMIT")
    name = f"bl_bench_col_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(MARIADB).set(database=name).update_query_dict({"local_infile": "1"})
    bind = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with bind.connect() as conn:
            conn.execute(sa.text(MY_DDL))
        runs = itertools.count(1)
        with Engine(url.render_as_string(hide_password=False)) as engine:
            step = (
                StepBuilder("load")
                .columnar(ROWS_PER_CHUNK)
                .reader(lambda se: ArrowCsvReader(str(path), schema=SCHEMA))
                .processor(validate)
                .writer(MySqlLoadDataWriter(TABLE, COLUMNS))
            )
            job = JobBuilder("bench_columnar_mariadb").step(step).build()

            def columnar() -> None:
                execution = engine.start(job, {"run": next(runs)})
                assert execution.status is BatchStatus.COMPLETED, execution.exit_status

            def client_load() -> None:
                statement = (
                    f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {TABLE} FIELDS TERMINATED BY "
                    "',' OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n' IGNORE 1 LINES "
                    f"({', '.join(COLUMNS)})"
                )
                argv = ["mariadb", "--local-infile=1", "-h", url.host or "127.0.0.1"]
                argv += ["-P", str(url.port or 3306), "-u", url.username or "root", name]
                subprocess.run([*argv, "-e", statement], check=True, capture_output=True)

            def truncate(label: str) -> None:
                with bind.connect() as conn:
                    conn.execute(sa.text(f"TRUNCATE TABLE {TABLE}"))

            def check(label: str) -> None:
                with bind.connect() as conn:
                    count = conn.execute(sa.text(f"SELECT count(*) FROM {TABLE}")).scalar()
                assert count == rows, f"{label}: {count} rows"

            # Five each: on this shared machine the server's own speed moves by a fifth from
            # one run to the next (1.07x-1.24x over three runs of three in one day).
            seconds = alternate(
                {"columnar": columnar, "client": client_load},
                repeats=5,
                setup=truncate,
                check=check,
            )
    finally:
        bind.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()
    return [
        Comparison(
            "csv -> mariadb, columnar",
            "columnar job (ArrowCsvReader typed + Arrow filter + MySqlLoadDataWriter)",
            "mariadb client LOAD DATA LOCAL INFILE",
            median(seconds["columnar"]),
            median(seconds["client"]),
            "ratio <= 1.1",
            1.1,
            note=f"{rows:,} rows, {ROWS_PER_CHUNK:,} a chunk, repository on the database; "
            f"runs: {_runs(seconds)}",
        )
    ]


# --- peak memory ------------------------------------------------------------------------------


def _memory(folder: Path, rows: int) -> list[Comparison]:
    """Peak RSS of the Parquet job in a process of its own, at 1x and 10x the rows."""
    csv_path = folder / "trades.csv"
    peaks: dict[int, float] = {}
    for times in (1, 10):
        source = folder / f"memory-{times}.parquet"
        _trades_parquet(csv_path, source, repeat=times)
        argv = [sys.executable, "-m", "benchmarks.bench_columnar", str(source), str(folder)]
        result = subprocess.run(argv, check=True, capture_output=True, text=True)
        peaks[times] = float(result.stdout.strip().splitlines()[-1])
        source.unlink()
    return [
        Comparison(
            "parquet -> parquet, peak memory",
            f"columnar job, {10 * rows:,} rows",
            f"the same job, {rows:,} rows",
            peaks[10],
            peaks[1],
            "ratio <= 1.1",
            1.1,
            unit="MB",
            note="peak RSS of the job's process (ru_maxrss)",
        )
    ]


def _memory_child(source: str, folder: str) -> None:
    target = Path(folder) / f"{Path(source).stem}-out.parquet"
    with Engine(f"sqlite:///{Path(folder) / (Path(source).stem + '.db')}") as engine:
        execution = engine.start(_parquet_job(Path(source), target))
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _runs(seconds: dict[str, list[float]]) -> str:
    return ", ".join(f"{k} {'/'.join(f'{v:.2f}' for v in vs)}" for k, vs in seconds.items())


if __name__ == "__main__":
    _memory_child(sys.argv[1], sys.argv[2])
