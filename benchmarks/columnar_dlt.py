"""The columnar CSV -> PostgreSQL job against dlt's Arrow path (part of bench_columnar; run when
dlt is installed)."""

from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.csv as pacsv
import sqlalchemy as sa

from batchline import BatchStatus, Engine, JobBuilder, StepBuilder
from batchline.items.arrow import ArrowCsvReader
from batchline.items.postgres_copy import PostgresCopyWriter
from benchmarks.bench_columnar import (
    PG_DDL,
    POSTGRES,
    ROWS_PER_CHUNK,
    SCHEMA,
    TABLE,
    _runs,
    validate,
)
from benchmarks.harness import Comparison, alternate, median
from benchmarks.trades import COLUMNS


def against_dlt(path: Path, folder: Path, rows: int) -> list[Comparison]:
    """The columnar CSV -> PostgreSQL job against dlt's Arrow path, alternated, in a fresh
    database each (dlt creates its own schema and tables)."""
    import dlt

    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    name = f"bl_bench_dlt_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(POSTGRES).set(database=name)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    # dlt's credentials want a password; the server trusts local connections
    dlt_dsn = url.set(drivername="postgresql", password=url.password or "unused")
    runs = itertools.count(1)
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(PG_DDL)  # type: ignore[arg-type]
        with Engine(url.render_as_string(hide_password=False)) as engine:
            step = (
                StepBuilder("load")
                .columnar(ROWS_PER_CHUNK)
                .reader(lambda se: ArrowCsvReader(str(path), schema=SCHEMA))
                .processor(validate)
                .writer(PostgresCopyWriter(TABLE, COLUMNS))
            )
            job = JobBuilder("bench_columnar_dlt").step(step).build()

            def columnar() -> None:
                execution = engine.start(job, {"run": next(runs)})
                assert execution.status is BatchStatus.COMPLETED, execution.exit_status

            def batches() -> Any:
                reader = pacsv.open_csv(
                    path, convert_options=pacsv.ConvertOptions(column_types=SCHEMA)
                )
                for batch in reader:
                    yield validate(batch)

            def with_dlt() -> None:
                pipeline = dlt.pipeline(
                    pipeline_name=f"bl_bench_{next(runs)}",
                    destination=dlt.destinations.postgres(
                        credentials=dlt_dsn.render_as_string(hide_password=False)
                    ),
                    dataset_name="dlt_trades",
                    pipelines_dir=str(folder / "dlt"),
                )
                pipeline.run(batches(), table_name=TABLE, write_disposition="append")

            seconds = alternate({"columnar": columnar, "dlt": with_dlt}, repeats=3)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
    return [
        Comparison(
            "csv -> postgres, columnar vs dlt",
            "columnar job (ArrowCsvReader typed + Arrow filter + PostgresCopyWriter)",
            f"dlt {dlt.__version__} Arrow path (the same Arrow batches, pipeline.run)",
            median(seconds["columnar"]),
            median(seconds["dlt"]),
            "ratio <= 0.2 (5x faster)",
            0.2,
            note=f"{rows:,} rows; runs: {_runs(seconds)}",
        )
    ]
