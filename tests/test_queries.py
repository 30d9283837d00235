"""The query API (engine.find_executions and friends) on every backend."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from batchline import (
    BatchStatus,
    ConfigurationError,
    Engine,
    ExecutionQuery,
    JobBuilder,
    ListWriter,
    NoSuchExecution,
    StepBuilder,
    StepExecution,
)
from batchline.repository.schema import job_execution


def _fail_if_asked(se: StepExecution) -> None:
    if se.parameters.get("fail"):
        raise RuntimeError("asked to fail")


def _jobs(engine: Engine) -> None:
    engine.register(JobBuilder("alpha").step(StepBuilder("a").task(_fail_if_asked)).build())
    engine.register(JobBuilder("beta").step(StepBuilder("b").task(_fail_if_asked)).build())


class _BadItem(ValueError):
    pass


def _reject_odd(item: int) -> int:
    if item % 2:
        raise _BadItem(f"odd {item}")
    return item


@pytest.fixture
def ran(engine: Engine) -> Engine:
    """alpha: runs 1..4 (run 2 and 4 fail), beta: one run."""
    _jobs(engine)
    for run in range(1, 5):
        engine.start("alpha", {"run": run, "fail": run % 2 == 0, "day": dt.date(2026, 11, run)})
    engine.start("beta", {"who": "x"})
    return engine


class TestQueries:
    def test_job_names(self, ran: Engine) -> None:
        assert ran.job_names() == ["alpha", "beta"]

    def test_instances_paged_and_counted(self, ran: Engine) -> None:
        assert ran.count_job_instances("alpha") == 4
        first = ran.job_instances("alpha", limit=3)
        assert len(first.items) == 3 and first.next_after == first.items[-1].id
        rest = ran.job_instances("alpha", after=first.next_after, limit=3)
        assert len(rest.items) == 1 and rest.next_after is None
        ids = [i.id for i in first.items + rest.items]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4

    def test_executions_of_an_instance(self, ran: Engine) -> None:
        failed = ran.find_executions(ExecutionQuery.of(statuses=["failed"])).items[-1]
        ran.register(
            JobBuilder("alpha").step(StepBuilder("a").task(lambda se: None)).build(),
            replace=True,
        )
        again = ran.restart(failed.id)
        found = ran.instance_executions(failed.instance.id)
        assert [e.id for e in found] == [again.id, failed.id]

    def test_filter_by_job_status_and_parameter(self, ran: Engine) -> None:
        def ids(**kw: object) -> list[int]:
            return [e.id for e in ran.find_executions(ExecutionQuery.of(**kw)).items]  # type: ignore[arg-type]

        assert len(ids(job_name="alpha")) == 4
        failed = ran.find_executions(ExecutionQuery.of(job_name="alpha", statuses=["FAILED"]))
        assert [e.parameters["run"] for e in failed.items] == [4, 2]
        assert [
            e.parameters["run"]
            for e in ran.find_executions(ExecutionQuery.of(parameters={"run": 3})).items
        ] == [3]
        assert len(ids(parameters={"fail": True})) == 2
        assert len(ids(parameters={"fail": False, "job": "x"})) == 0
        assert len(ids(parameters={"day": dt.date(2026, 11, 1)})) == 1
        assert len(ids(parameters={"who": "x"})) == 1
        assert ids(parameters={"nothere": "x"}) == []
        assert ran.count_executions(ExecutionQuery.of(statuses=["COMPLETED"])) == 3

    def test_time_range(self, ran: Engine) -> None:
        every = ran.find_executions().items
        middle = sorted(every, key=lambda e: e.id)[2]
        # Spread the creation times a day apart, so the range is exact on every backend.
        base = dt.datetime(2026, 1, 1)
        with sa.create_engine(ran.repository.url() or "").begin() as conn:  # type: ignore[attr-defined]
            for n, e in enumerate(sorted(every, key=lambda e: e.id)):
                conn.execute(
                    job_execution.update()
                    .where(job_execution.c.id == e.id)
                    .values(create_time=base + dt.timedelta(days=n))
                )
        window = ExecutionQuery.of(
            created_from=base + dt.timedelta(days=2), created_to=base + dt.timedelta(days=3)
        )
        assert [e.id for e in ran.find_executions(window).items] == [middle.id]

    def test_keyset_pages_cover_everything_once(self, ran: Engine) -> None:
        seen: list[int] = []
        after = None
        while True:
            page = ran.find_executions(after=after, limit=2)
            seen += [e.id for e in page.items]
            if page.next_after is None:
                break
            after = page.next_after
        assert seen == sorted(seen, reverse=True) and len(set(seen)) == 5

    def test_running_by_status(self, ran: Engine) -> None:
        assert ran.running_executions() == []
        started = ran.launch("beta", {"who": "y"})[1]  # launched, not run: STARTING
        assert [e.id for e in ran.running_executions()] == [started.id]
        assert ran.running_executions("alpha") == []

    def test_step_execution_by_id(self, ran: Engine) -> None:
        step = ran.get_execution(ran.find_executions().items[0].id).step_executions[0]
        assert ran.get_step_execution(step.id).step_name == step.step_name
        with pytest.raises(NoSuchExecution, match="no step execution with id 999999"):
            ran.get_step_execution(999999)

    def test_summaries(self, ran: Engine) -> None:
        alpha, beta = ran.job_summaries()
        assert alpha.job_name == "alpha" and alpha.total == 4
        assert alpha.counts == {BatchStatus.COMPLETED: 2, BatchStatus.FAILED: 2}
        assert alpha.last is not None and alpha.last.parameters["run"] == 4
        assert alpha.average_seconds is not None and 0 <= alpha.average_seconds < 60
        assert beta.total == 1

    def test_skipped_items_paged(self, engine: Engine) -> None:
        step = (
            StepBuilder("odd")
            .chunk(4)
            .reader(list(range(10)))
            .processor(_reject_odd)
            .writer(ListWriter())
            .skip(_BadItem, limit=None)
        )
        engine.register(JobBuilder("skips").step(step).build())
        execution = engine.start("skips")
        first = engine.skipped_page(execution.id, limit=3)
        rest = engine.skipped_page(execution.id, after=first.next_after, limit=3)
        assert [s.item for s in first.items + rest.items] == ["1", "3", "5", "7", "9"]
        assert rest.next_after is None

    def test_bad_status_and_page_size_are_one_line_errors(self, ran: Engine) -> None:
        with pytest.raises(ConfigurationError, match="unknown status 'DONE'"):
            ExecutionQuery.of(statuses=["DONE"])
        with pytest.raises(ConfigurationError, match="page size 0 is out of range"):
            ran.find_executions(limit=0)
