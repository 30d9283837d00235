"""Every list the console and the API show reads the history through an index: the database's
own plan (EXPLAIN) of each statement, on a history of 20,000 executions filled with SQL, holds
no full scan of the executions, instances or parameter tables."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from benchmarks.history import BASE_TIME, fill

from batchline import Engine, ExecutionQuery
from batchline.repository import create_engine, migrate
from tests.backends import fresh_database

pytestmark = pytest.mark.slow

EXECUTIONS = 20_000
BIG = {"batch_job_execution", "batch_job_instance", "batch_execution_parameter"}
QUERIES = {
    "everything": ExecutionQuery(),
    "one job": ExecutionQuery.of(job_name="job_3"),
    "one job, two statuses": ExecutionQuery.of(job_name="job_3", statuses=["FAILED", "STOPPED"]),
    "several statuses": ExecutionQuery.of(statuses=["FAILED", "STOPPED", "ABANDONED"]),
    "running now": ExecutionQuery.of(statuses=["STARTING", "STARTED", "STOPPING"]),
    "job prefix": ExecutionQuery.of(job_prefix="job_", statuses=["FAILED"]),
    "exit message": ExecutionQuery.of(message="ROW 1997"),
    "parameter": ExecutionQuery.of(parameters={"region": "r3"}),
    "two parameters and a job": ExecutionQuery.of(
        job_name="job_3", parameters={"region": "r3", "n": 19963}
    ),
    "time range": ExecutionQuery.of(
        created_from=BASE_TIME.replace(day=3), created_to=BASE_TIME.replace(day=5)
    ),
}


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def history(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    with fresh_database(request.param, tmp_path_factory.mktemp("plans")) as url:
        bind = create_engine(url)
        migrate(bind)
        with bind.begin() as conn:
            fill(conn, EXECUTIONS)
        bind.dispose()
        with Engine(url) as engine:
            yield engine


def _statements(engine: Engine, read: Any) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    bind = engine.repository.engine  # type: ignore[attr-defined]
    sa.event.listen(bind, "before_cursor_execute", record)
    try:
        read()
    finally:
        sa.event.remove(bind, "before_cursor_execute", record)
    assert seen, "no statement was sent"
    return seen


def _scans(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """The big tables the plan reads whole."""
    bind = engine.repository.engine  # type: ignore[attr-defined]
    with bind.connect() as conn:
        if bind.dialect.name == "postgresql":
            raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
            plan = raw if isinstance(raw, list) else json.loads(raw)
            return [
                node["Relation Name"]
                for node in _nodes(plan[0]["Plan"])
                if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in BIG
            ]
        rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).mappings().all()
        aliases = {"p0": "batch_execution_parameter", "p1": "batch_execution_parameter"}
        return [
            aliases.get(r["table"], r["table"])
            for r in rows
            if r["type"] == "ALL" and aliases.get(r["table"], r["table"]) in BIG
        ]


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _check(engine: Engine, read: Any) -> None:
    for statement, parameters in _statements(engine, read):
        scans = _scans(engine, statement, parameters)
        assert scans == [], f"full scan of {scans} in: {statement}"


class TestPlans:
    @pytest.mark.parametrize("name", sorted(QUERIES))
    def test_execution_pages_and_counts_use_indexes(self, history: Engine, name: str) -> None:
        """A page (first, older, newer) and its count read no big table whole."""
        query = QUERIES[name]
        first = history.find_executions(query, limit=50)
        assert first.items, f"{name}: the filled history should match"
        _check(history, lambda: history.find_executions(query, limit=50))
        _check(history, lambda: history.count_bounded(query))
        if first.next_after is not None:
            _check(history, lambda: history.find_executions(query, after=first.next_after))
            _check(history, lambda: history.find_executions(query, before=first.items[-1].id))

    def test_job_summaries_use_indexes(self, history: Engine) -> None:
        """The overview's and a job page's summaries, and job names, read no big table whole."""
        _check(history, history.job_summaries)
        _check(history, lambda: history.job_summaries("job_2"))
        _check(history, history.job_names)

    def test_other_lists_use_indexes(self, history: Engine) -> None:
        """Running executions, an instance's attempts, skip flags and a job's instances."""
        ids = [e.id for e in history.find_executions(limit=50).items]
        _check(history, history.running_executions)
        _check(history, lambda: history.instance_executions(7))
        _check(history, lambda: history.with_skips(ids))
        _check(history, lambda: history.job_instances("job_2"))
