"""A job history of any size, filled with SQL (PostgreSQL's generate_series, MariaDB's
sequence tables): a million executions in a few minutes, where launching them would take hours.

Five jobs (``job_0``..``job_4``), two executions per instance, one a minute from BASE_TIME;
90% COMPLETED, 8% FAILED (with an exit message naming the execution), 1% STOPPED, 1%
ABANDONED, and the newest three STARTED (running now). Parameters ``n`` (the execution's
number) and ``region`` (``r0``..``r9``), also in the parameter side table. The per-job summary
rows are rebuilt from the executions at the end, as the migration does.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from batchline.repository import summary

BASE_TIME = dt.datetime(2026, 1, 1)
RUNNING = 3


def _status(e: str) -> str:
    return (
        f"CASE WHEN {e} > :executions - {RUNNING} THEN 'STARTED' "
        f"WHEN {e} % 100 = 7 THEN 'STOPPED' WHEN {e} % 100 = 8 THEN 'ABANDONED' "
        f"WHEN {e} % 25 = 3 THEN 'FAILED' ELSE 'COMPLETED' END"
    )


_POSTGRES = f"""
INSERT INTO batch_job_instance (id, job_name, job_key, create_time)
SELECT i, 'job_' || ((i / 7) % 5), md5(i::text), :base FROM generate_series(1, :instances) AS i;
INSERT INTO batch_job_execution (id, job_instance_id, job_name, version, status, exit_code,
    exit_message, parameters, context, create_time, start_time, end_time, running_instance_id)
SELECT e, 1 + (e % :instances), 'job_' || (((1 + (e % :instances)) / 7) % 5), 1, s, s,
    CASE WHEN s = 'FAILED' THEN 'error: row ' || e || ' is not a number' ELSE '' END,
    '{{"n": {{"identifying": true, "type": "int", "value": ' || e || '}}, '
    || '"region": {{"identifying": true, "type": "str", "value": "r' || (e % 10) || '"}}}}',
    '{{}}', :base + e * interval '1 minute', :base + e * interval '1 minute',
    CASE WHEN s = 'STARTED' THEN NULL ELSE :base + e * interval '1 minute' + interval '5 seconds'
    END,
    CASE WHEN s = 'STARTED' THEN 1 + (e % :instances) END
FROM generate_series(1, :executions) AS e, LATERAL (SELECT {_status("e")} AS s) AS st;
UPDATE batch_job_instance SET last_execution_id = id - 1 + :executions - :instances;
UPDATE batch_job_instance SET last_execution_id = :executions WHERE id = 1;
INSERT INTO batch_execution_parameter (job_execution_id, name, value)
SELECT e, 'n', e::text FROM generate_series(1, :executions) AS e;
INSERT INTO batch_execution_parameter (job_execution_id, name, value)
SELECT e, 'region', 'r' || (e % 10) FROM generate_series(1, :executions) AS e;
SELECT setval(pg_get_serial_sequence('batch_job_instance', 'id'), :instances);
SELECT setval(pg_get_serial_sequence('batch_job_execution', 'id'), :executions)
"""

_MARIADB = f"""
INSERT INTO batch_job_instance (id, job_name, job_key, create_time)
SELECT seq, CONCAT('job_', (seq DIV 7) % 5), MD5(seq), :base FROM seq_1_to_INSTANCES;
INSERT INTO batch_job_execution (id, job_instance_id, job_name, version, status, exit_code,
    exit_message, parameters, context, create_time, start_time, end_time, running_instance_id)
SELECT e, 1 + (e % :instances), CONCAT('job_', ((1 + (e % :instances)) DIV 7) % 5), 1, s, s,
    IF(s = 'FAILED', CONCAT('error: row ', e, ' is not a number'), ''),
    CONCAT('{{"n": {{"identifying": true, "type": "int", "value": ', e, '}}, ',
        '"region": {{"identifying": true, "type": "str", "value": "r', e % 10, '"}}}}'),
    '{{}}', :base + INTERVAL e MINUTE, :base + INTERVAL e MINUTE,
    IF(s = 'STARTED', NULL, :base + INTERVAL e MINUTE + INTERVAL 5 SECOND),
    IF(s = 'STARTED', 1 + (e % :instances), NULL)
FROM (SELECT seq AS e, {_status("seq")} AS s FROM seq_1_to_EXECUTIONS) AS t;
UPDATE batch_job_instance SET last_execution_id = id - 1 + :executions - :instances;
UPDATE batch_job_instance SET last_execution_id = :executions WHERE id = 1;
INSERT INTO batch_execution_parameter (job_execution_id, name, value)
SELECT seq, 'n', seq FROM seq_1_to_EXECUTIONS;
INSERT INTO batch_execution_parameter (job_execution_id, name, value)
SELECT seq, 'region', CONCAT('r', seq % 10) FROM seq_1_to_EXECUTIONS
"""


def fill(conn: Connection, executions: int) -> None:
    """Fill an empty, migrated repository with ``executions`` executions (an even number)."""
    instances = executions // 2
    values = {"base": BASE_TIME, "instances": instances, "executions": executions}
    dialect = conn.dialect.name
    if dialect == "postgresql":
        script = _POSTGRES
    elif dialect in ("mysql", "mariadb"):
        script = _MARIADB.replace("INSTANCES", str(instances)).replace(
            "EXECUTIONS", str(executions)
        )
    else:
        raise ValueError(f"no SQL fill for {dialect}")
    for statement in filter(str.strip, script.split(";")):
        conn.execute(sa.text(statement), values)
    summary.rebuild(conn, parameters=False)
    if dialect == "postgresql":
        for table in ("batch_job_instance", "batch_job_execution", "batch_execution_parameter"):
            conn.execute(sa.text(f"ANALYZE {table}"))
    else:
        conn.execute(
            sa.text(
                "ANALYZE TABLE batch_job_instance, batch_job_execution, batch_execution_parameter"
            )
        )
