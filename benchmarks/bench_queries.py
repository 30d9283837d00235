"""The query API over 100,000 executions on PostgreSQL: a page of 50 filtered by status and time.

Setup bulk-inserts the rows with SQL (1,000 instances of 5 jobs, 100 executions each, created a
minute apart over ~70 days; 10% FAILED, 1% STOPPED, the rest COMPLETED). The candidate is
``Engine.find_executions`` (row mapping to JobExecution objects included); the baseline is the
same SELECT sent through psycopg by hand, the floor. The goal is absolute: under 50 ms.
``web_api_page`` (bench_web_api) reuses ``populated`` for the REST API's page.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa

from batchline import Engine, ExecutionQuery, SqlJobRepository
from batchline.repository import summary
from benchmarks.harness import Comparison, side_by_side

ADMIN_URL = os.environ.get(
    "BATCHLINE_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
EXECUTIONS, QUICK_EXECUTIONS = 100_000, 20_000
GOAL_SECONDS = 0.050
BASE_TIME = dt.datetime(2026, 1, 1)
WINDOW = (BASE_TIME + dt.timedelta(days=10), BASE_TIME + dt.timedelta(days=40))

_FILL = """
INSERT INTO batch_job_instance (id, job_name, job_key, create_time)
SELECT i, 'job_' || (i % 5), md5(i::text), :base FROM generate_series(1, :instances) AS i;
INSERT INTO batch_job_execution (id, job_instance_id, job_name, version, status, exit_code,
    exit_message, parameters, context, create_time, start_time, end_time)
SELECT e, 1 + (e % :instances), 'job_' || ((1 + (e % :instances)) % 5), 1,
    CASE WHEN e % 100 = 7 THEN 'STOPPED' WHEN e % 10 = 3 THEN 'FAILED' ELSE 'COMPLETED' END,
    'COMPLETED', '', '{"n": {"type": "int", "value": ' || e || ', "identifying": true}}', '{}',
    :base + e * interval '1 minute', :base + e * interval '1 minute',
    :base + e * interval '1 minute' + interval '5 seconds'
FROM generate_series(1, :executions) AS e;
UPDATE batch_job_instance SET last_execution_id = id + :executions - :instances;
ANALYZE batch_job_instance; ANALYZE batch_job_execution;
"""


@contextmanager
def populated(executions: int) -> Iterator[str]:
    """A fresh PostgreSQL database migrated to head and filled; yields its URL."""
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"bl_bench_query_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        repository = SqlJobRepository(url)
        with repository.engine.begin() as conn:
            for statement in filter(str.strip, _FILL.split(";")):
                conn.execute(
                    sa.text(statement),
                    {"base": BASE_TIME, "instances": 1000, "executions": executions},
                )
            summary.rebuild(conn)
        repository.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _comparison(name: str, cand: float, base: float) -> Comparison:
    return Comparison(
        name=name,
        candidate="`Engine.find_executions`",
        baseline="same SELECT through psycopg",
        candidate_seconds=cand,
        baseline_seconds=base,
        goal=f"< {GOAL_SECONDS * 1000:.0f} ms",
        goal_ratio=GOAL_SECONDS / base,
        note=f"{cand * 1000:.1f} ms against {base * 1000:.1f} ms, goal {GOAL_SECONDS * 1e3:.0f} ms",
    )


def run(quick: bool) -> list[Comparison]:
    executions = QUICK_EXECUTIONS if quick else EXECUTIONS
    query = ExecutionQuery.of(statuses=["FAILED"], created_from=WINDOW[0], created_to=WINDOW[1])
    sql = (
        "SELECT e.*, i.job_name, i.job_key FROM batch_job_execution e JOIN batch_job_instance i"
        " ON i.id = e.job_instance_id WHERE e.status = 'FAILED' AND e.create_time >= %s"
        " AND e.create_time < %s AND e.id < %s ORDER BY e.id DESC LIMIT 51"
    )
    results = []
    with populated(executions) as url, Engine(url) as engine:
        raw = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(raw) as conn:
            deep_after = None
            for _ in range(20):  # the key of page 21, found by paging
                deep_after = engine.find_executions(query, after=deep_after).next_after
            for label, after in (("first page", None), ("page 21 (keyset)", deep_after)):

                def candidate(after: int | None = after) -> None:
                    assert len(engine.find_executions(query, after=after).items) == 50

                def baseline(after: int | None = after) -> None:
                    rows = conn.execute(sql, (*WINDOW, after or 2**62)).fetchall()
                    assert len(rows) == 51

                cand, base = side_by_side(candidate, baseline, repeats=20)
                results.append(
                    _comparison(
                        f"query API, {executions:,} executions, PostgreSQL: {label} of 50, "
                        "status + time",
                        cand,
                        base,
                    )
                )
    return results
