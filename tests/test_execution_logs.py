"""Execution logs: a job's log lines, from any logger, kept with its execution, bounded."""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa

from batchline import BatchStatus, Engine, JobBuilder, StepBuilder, StepExecution
from batchline.model import utcnow
from batchline.repository.logs import ExecutionLogs
from batchline.repository.purge import purge
from batchline.repository.schema import execution_log, job_execution

app_log = logging.getLogger("tests.app")


def bind_of(engine: Engine) -> sa.Engine:
    return engine.repository.engine  # type: ignore[attr-defined,no-any-return]


def chatty(lines: int) -> JobBuilder:
    def talk(se: StepExecution) -> None:
        app_log.debug("not kept at INFO")
        for i in range(lines):
            app_log.info("line %d of %s", i, se.step_name)
        try:
            raise ValueError("shown with its traceback")
        except ValueError:
            app_log.warning("caught", exc_info=True)

    return JobBuilder("chatty").step(StepBuilder("talk").task(talk))


class TestKeptLines:
    def test_application_and_batchline_lines_are_kept_in_order(self, engine: Engine) -> None:
        """The app's INFO lines and batchline's own are kept in order with their step; DEBUG not."""
        done = engine.start(engine.register(chatty(3).build()))
        assert done.status is BatchStatus.COMPLETED
        page = ExecutionLogs(bind_of(engine)).page(done.id)
        messages = [line.message for line in page.items]
        assert "line 0 of talk" in messages and "line 2 of talk" in messages
        assert messages.index("line 0 of talk") < messages.index("line 2 of talk")
        assert not any("not kept" in m for m in messages)
        assert any(m.startswith("step talk started") for m in messages)
        (mine,) = [line for line in page.items if line.message == "line 1 of talk"]
        assert mine.logger == "tests.app" and mine.step_name == "talk" and mine.level_name == "INFO"
        (warned,) = [line for line in page.items if line.message.startswith("caught")]
        assert "ValueError: shown with its traceback" in warned.message
        assert page.dropped == 0

    def test_level_filter_and_following_after_an_id(self, engine: Engine) -> None:
        """level= keeps WARNING and up; after= gives only the lines written after that one."""
        done = engine.start(engine.register(chatty(3).build()))
        logs = ExecutionLogs(bind_of(engine))
        warnings = logs.page(done.id, level=logging.WARNING).items
        assert [w.message.splitlines()[0] for w in warnings] == ["caught"]
        first = logs.page(done.id, limit=2)
        rest = logs.page(done.id, after=first.next_after)
        assert [x.id for x in first.items + rest.items] == [x.id for x in logs.page(done.id).items]

    def test_lines_past_the_cap_are_counted_not_kept(self, db_url: str) -> None:
        """At most log_cap lines per execution; the rest are counted as dropped."""
        with Engine(db_url, log_cap=10) as engine:
            done = engine.start(engine.register(chatty(50).build()))
            page = ExecutionLogs(bind_of(engine), cap=10).page(done.id)
        assert len(page.items) == 10
        assert page.dropped > 40

    def test_no_capture_when_log_level_is_none(self, sqlite_url: str) -> None:
        """log_level=None keeps no lines."""
        with Engine(sqlite_url, log_level=None) as engine:
            done = engine.start(engine.register(chatty(3).build()))
            assert ExecutionLogs(bind_of(engine)).page(done.id).items == []

    def test_purge_deletes_the_lines_with_their_execution(self, engine: Engine) -> None:
        """Purging an execution deletes its log lines."""
        job = engine.register(chatty(3).build())
        old = engine.start(job, {"run": 1})
        kept = engine.start(job, {"run": 2})
        with bind_of(engine).begin() as conn:
            conn.execute(
                job_execution.update()
                .where(job_execution.c.id == old.id)
                .values(create_time=utcnow() - dt.timedelta(days=9))
            )
        result = purge(engine.repository, utcnow() - dt.timedelta(days=1))
        assert result.deleted[execution_log.name] > 0
        with bind_of(engine).connect() as conn:
            left = set(conn.execute(sa.select(execution_log.c.job_execution_id)).scalars())
        assert left == {kept.id}
