"""Finding executions for the console (several statuses, running now, job prefix, exit-message
search, previous pages, bounded counts) and the per-job summary rows, on every backend."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Engine, ExecutionQuery, JobBuilder, StepBuilder, StepExecution
from batchline.repository import summary
from batchline.repository.filters import RUNNING
from batchline.repository.purge import purge
from batchline.repository.schema import job_execution, job_summary


def _fail_if_asked(se: StepExecution) -> None:
    if se.parameters.get("fail"):
        raise RuntimeError(f"asked to fail on run {se.parameters['run']}")


@pytest.fixture
def ran(engine: Engine) -> Engine:
    """etl/load: 6 runs (odd ones fail), etl/extract: 2 runs, other: 1 run, and one launched
    but not run (STARTING)."""
    for name in ("etl/load", "etl/extract", "other"):
        engine.register(JobBuilder(name).step(StepBuilder("s").task(_fail_if_asked)).build())
    for run in range(6):
        engine.start("etl/load", {"run": run, "fail": run % 2 == 1})
    for run in range(2):
        engine.start("etl/extract", {"run": run})
    engine.start("other", {"run": 0, "note": "x" * 300})
    engine.launch("other", {"run": 1})
    return engine


def _ids(engine: Engine, **kw: object) -> list[int]:
    return [e.id for e in engine.find_executions(ExecutionQuery.of(**kw)).items]  # type: ignore[arg-type]


def _summary_rows(engine: Engine) -> dict[tuple[str, str], tuple[int, int]]:
    with sa.create_engine(engine.repository.url() or "").connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(sa.select(job_summary)).mappings().all()
    return {
        (r["job_name"], r["status"]): (int(r["executions"]), int(r["timed"]))
        for r in rows
        if r["executions"]
    }


class TestFinding:
    def test_several_statuses_at_once(self, ran: Engine) -> None:
        """A filter on FAILED and STARTING returns both kinds, newest first, nothing else."""
        found = ran.find_executions(ExecutionQuery.of(statuses=["FAILED", "STARTING"])).items
        assert [e.status for e in found] == [BatchStatus.STARTING] + [BatchStatus.FAILED] * 3
        assert [e.id for e in found] == sorted((e.id for e in found), reverse=True)

    def test_running_now(self, ran: Engine) -> None:
        """The running statuses find the launched execution only."""
        found = ran.find_executions(ExecutionQuery.of(statuses=RUNNING)).items
        assert [(e.job_name, e.status) for e in found] == [("other", BatchStatus.STARTING)]

    def test_job_name_prefix(self, ran: Engine) -> None:
        """A prefix covers every job it starts; its characters are literal (no LIKE wildcards)."""
        assert len(_ids(ran, job_prefix="etl/")) == 8
        assert len(_ids(ran, job_prefix="etl/", statuses=["COMPLETED"])) == 5
        assert _ids(ran, job_prefix="etl%") == [] and _ids(ran, job_prefix="_tl") == []
        assert _ids(ran, job_prefix="nothing") == []

    def test_exit_message_search(self, ran: Engine) -> None:
        """Free text over exit messages, in any case, finds the failures that say it."""
        found = ran.find_executions(ExecutionQuery.of(message="ON RUN 3")).items
        assert [e.parameters["run"] for e in found] == [3]
        assert len(_ids(ran, message="asked to fail", job_name="etl/load")) == 3
        assert _ids(ran, message="100%") == []

    def test_parameter_filter_with_long_values(self, ran: Engine) -> None:
        """A value longer than the side table keeps is still compared in full."""
        assert len(_ids(ran, parameters={"note": "x" * 300})) == 1
        assert _ids(ran, parameters={"note": "x" * 299 + "y"}) == []
        assert len(_ids(ran, parameters={"run": 1, "fail": True})) == 1

    def test_previous_and_next_pages(self, ran: Engine) -> None:
        """Walking older then newer pages returns the same pages; previous_before is None on
        the first page."""
        query = ExecutionQuery.of(job_prefix="etl/")
        first = ran.find_executions(query, limit=3)
        assert first.previous_before is None
        second = ran.find_executions(query, after=first.next_after, limit=3)
        assert second.previous_before == second.items[0].id
        back = ran.find_executions(query, before=second.previous_before, limit=3)
        assert [e.id for e in back.items] == [e.id for e in first.items]
        assert back.previous_before is None and back.next_after == first.items[-1].id

    def test_counts(self, ran: Engine) -> None:
        """Job-and-status counts are exact from the summary; other filters count up to a
        bound and say when they passed it."""
        assert ran.count_bounded(ExecutionQuery.of(job_prefix="etl/")).value == 8
        assert ran.count_executions(ExecutionQuery.of(statuses=["FAILED"])) == 3
        capped = ran.count_bounded(ExecutionQuery.of(parameters={"fail": False}), bound=2)
        assert (capped.value, capped.exact) == (2, False) and str(capped) == "more than 2"
        exact = ran.count_bounded(ExecutionQuery.of(parameters={"fail": True}))
        assert (exact.value, exact.exact) == (3, True)

    def test_instance_count_can_stop_at_a_bound(self, ran: Engine) -> None:
        """Counting a job's instances stops one past the bound when asked to."""
        assert ran.count_job_instances("etl/load") == 6
        assert ran.count_job_instances("etl/load", bound=2) == 3

    def test_with_skips_probe(self, ran: Engine) -> None:
        """No execution here skipped an item."""
        assert ran.with_skips(_ids(ran)) == set()


class TestSummaryRows:
    def test_follow_every_status_change(self, ran: Engine) -> None:
        """Launch, run, fail, stop, abandon and purge each move the summary rows so that they
        equal a count over the executions."""
        launched = ran.find_executions(ExecutionQuery.of(statuses=["STARTING"])).items[0]
        ran.stop(launched.id)
        failed = ran.find_executions(ExecutionQuery.of(statuses=["FAILED"])).items[0]
        ran.abandon(failed.id)
        url = ran.repository.url() or ""  # type: ignore[attr-defined]
        with sa.create_engine(url).begin() as conn:
            conn.execute(job_execution.update().values(create_time=dt.datetime(2000, 1, 1)))
            truth = {
                (str(n), str(s)): int(c)
                for n, s, c in conn.execute(
                    sa.select(
                        job_execution.c.job_name, job_execution.c.status, sa.func.count()
                    ).group_by(job_execution.c.job_name, job_execution.c.status)
                ).all()
            }
        assert {k: v[0] for k, v in _summary_rows(ran).items()} == truth
        assert truth[("other", "STOPPING")] == 1 and truth[("etl/load", "ABANDONED")] == 1
        purge(ran.repository, dt.datetime(2001, 1, 1))
        assert {k: v[0] for k, v in _summary_rows(ran).items()} == {("other", "STOPPING"): 1}

    def test_rebuild_agrees_with_the_running_totals(self, ran: Engine) -> None:
        """Rebuilding from the executions gives the rows the status changes kept."""
        kept = _summary_rows(ran)
        with sa.create_engine(ran.repository.url() or "").begin() as conn:  # type: ignore[attr-defined]
            summary.rebuild(conn)
        assert _summary_rows(ran) == kept

    def test_job_summary_of_one_job(self, ran: Engine) -> None:
        """One job's summary: counts, last execution, the average of its completed runs."""
        (load,) = ran.job_summaries("etl/load")
        assert load.counts == {BatchStatus.COMPLETED: 3, BatchStatus.FAILED: 3}
        assert load.last is not None and load.last.parameters["run"] == 5
        assert load.average_seconds is not None and 0 <= load.average_seconds < 60
        assert ran.job_names() == ["etl/extract", "etl/load", "other"]
