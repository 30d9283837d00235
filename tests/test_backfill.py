"""Backfills on every backend: one instance per value, the launch rules deciding what runs."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from batchline import BatchStatus, Engine
from batchline.backfill import parse_range, parse_values
from batchline.cli import main
from batchline.errors import BackfillRunning, NoSuchBackfill, ParameterError
from batchline.testing import eventually
from tests.jobs import backfill_jobs
from tests.jobs.backfill_jobs import FAIL_ENV, JOB_NAME, PAUSE_ENV, ROWS, out

NOVEMBER = "day:date=2026-11-01..2026-11-30"


@pytest.fixture
def loaded(engine: Engine) -> Engine:
    backfill_jobs.tables.create_all(engine.repository.engine)  # type: ignore[attr-defined]
    engine.register(backfill_jobs.build())
    return engine


def rows(engine: Engine) -> Counter[tuple[str, int]]:
    bind: sa.Engine = engine.repository.engine  # type: ignore[attr-defined]
    with bind.connect() as conn:
        return Counter(tuple(r) for r in conn.execute(sa.select(out.c.day, out.c.n)))


def days(first: int, last: int) -> Counter[tuple[str, int]]:
    return Counter((f"2026-11-{d:02d}", n) for d in range(first, last + 1) for n in range(ROWS))


def executions_per_instance(engine: Engine) -> Counter[int]:
    return Counter(e.instance.id for e in engine.list_executions(JOB_NAME, limit=1000))


class TestRanges:
    def test_dates_weeks_months_datetimes_integers_and_lists(self) -> None:
        """Each kind of range walks its values with both ends included, month ends clipped."""
        assert len(parse_range(NOVEMBER)) == 30
        assert [str(v) for v in parse_range("d:date=2026-11-01..2026-11-30", "1w").values] == [
            "2026-11-01", "2026-11-08", "2026-11-15", "2026-11-22", "2026-11-29",
        ]  # fmt: skip
        months = parse_range("d:date=2026-01-31..2026-04-30", "1month").values
        assert [str(v) for v in months] == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]
        hours = parse_range("t:datetime=2026-11-01T00:00..2026-11-01T01:00", "30min").values
        assert [v.isoformat() for v in hours] == [  # type: ignore[union-attr]
            "2026-11-01T00:00:00", "2026-11-01T00:30:00", "2026-11-01T01:00:00",
        ]  # fmt: skip
        assert parse_range("n:int=1..10", "4").values == (1, 5, 9)
        assert parse_values("region=eu,us").values == ("eu", "us")

    @pytest.mark.parametrize(
        ("spec", "step", "says"),
        [
            ("day=2026-11-01", None, "expected NAME:TYPE=FIRST..LAST"),
            ("day:date=2026-11-05..2026-11-01", None, "comes before its first"),
            ("day:date=2026-11-01..2026-11-05", "1h", "dates step by d"),
            ("t:datetime=2026-11-01T00:00..2026-11-02T00:00", None, "needs --step"),
            ("day:date=2026-11-01..2026-13-05", None, "is not a date"),
            ("n:int=1..9999999", "1", "more than 100000 values"),
            ("s=a..b", None, "use --values for a list"),
        ],
    )
    def test_bad_ranges_say_what_is_wrong(self, spec: str, step: str | None, says: str) -> None:
        """A bad range is one ParameterError naming the range and the fault."""
        with pytest.raises(ParameterError, match=says):
            parse_range(spec, step)


class TestBackfill:
    def test_runs_each_value_once_and_skips_what_completed(self, loaded: Engine) -> None:
        """30 days at concurrency 4: each instance once; a second backfill over them runs none."""
        state = loaded.backfill(JOB_NAME, NOVEMBER, concurrency=4).wait(120)
        assert state.status == "COMPLETED"
        assert state.counts == {"COMPLETED": 30}
        again = loaded.backfill(JOB_NAME, "day:date=2026-11-20..2026-11-30").wait(60)
        assert again.counts == {"COMPLETED": 11}
        assert set(executions_per_instance(loaded).values()) == {1}
        assert rows(loaded) == days(1, 30)
        assert [r.id for r in loaded.backfills(JOB_NAME)] == [again.id, state.id]

    def test_failed_values_are_restarted_only_when_asked(
        self, loaded: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A failed day is left FAILED (worst outcome FAILED), then restarted by restart_failed."""
        monkeypatch.setenv(FAIL_ENV, "2026-11-02")
        first = loaded.backfill(JOB_NAME, "day:date=2026-11-01..2026-11-03").wait(60)
        assert first.worst() is BatchStatus.FAILED and first.status == "FAILED"
        assert first.counts == {"COMPLETED": 2, "FAILED": 1}
        monkeypatch.delenv(FAIL_ENV)
        plain = loaded.backfill(JOB_NAME, "day:date=2026-11-01..2026-11-03").wait(60)
        assert plain.counts == {"COMPLETED": 2, "FAILED": 1}
        fixed = loaded.backfill(
            JOB_NAME, "day:date=2026-11-01..2026-11-03", restart_failed=True
        ).wait(60)
        assert fixed.counts == {"COMPLETED": 3} and fixed.worst() is BatchStatus.COMPLETED
        assert rows(loaded) == days(1, 3)

    def test_other_parameters_make_other_instances(self, loaded: Engine) -> None:
        """--param region=eu names other instances than region=us for the same days."""
        loaded.backfill(JOB_NAME, parse_values("day:date=2026-11-01,2026-11-02"),
                        parameters={"region": "eu"}).wait(60)  # fmt: skip
        us = loaded.backfill(JOB_NAME, "day:date=2026-11-01..2026-11-02",
                             parameters={"region": "us"}).wait(60)  # fmt: skip
        assert us.counts == {"COMPLETED": 2}
        assert len(executions_per_instance(loaded)) == 4
        with pytest.raises(ParameterError, match="is the backfill's range"):
            loaded.backfill(JOB_NAME, NOVEMBER, parameters={"day": "x"})


def test_overlapping_backfills_started_together_run_every_instance_once(
    db_url: str, loaded: Engine
) -> None:
    """Two engines, 1..30 and 1..20 at once (both racing for the same days from the first):
    every instance has one execution, each backfill sees all its days completed, rows exact."""
    other = Engine(db_url, heartbeat_interval=0.5, lease=5)
    other.register(backfill_jobs.build())
    try:
        go = threading.Barrier(2)
        handles = []

        def begin(engine: Engine, spec: str) -> None:
            go.wait()
            handles.append(engine.backfill(JOB_NAME, spec, concurrency=4))

        threads = [
            threading.Thread(target=begin, args=(loaded, NOVEMBER)),
            threading.Thread(target=begin, args=(other, "day:date=2026-11-01..2026-11-20")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        states = [h.wait(120) for h in handles]
        assert sorted(s.total for s in states) == [20, 30]
        assert all(s.status == "COMPLETED" for s in states), [s.counts for s in states]
        per_instance = executions_per_instance(loaded)
        assert len(per_instance) == 30 and set(per_instance.values()) == {1}
        assert rows(loaded) == days(1, 30)
    finally:
        other.close()


def test_stop_stops_running_executions_and_resume_finishes(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop ends running executions STOPPED and launches nothing; resume restarts them."""
    backfill_jobs.tables.create_all(sqlite_engine.repository.engine)  # type: ignore[attr-defined]
    sqlite_engine.register(backfill_jobs.build())
    monkeypatch.setenv(PAUSE_ENV, "0.15")  # a chunk takes 0.6 s: the stop comes mid-run
    handle = sqlite_engine.backfill(JOB_NAME, "day:date=2026-11-01..2026-11-10", concurrency=2)
    eventually(lambda: handle.state().counts.get("STARTED", 0) >= 1, timeout=30)
    handle.stop()
    stopped = handle.wait(60)
    assert stopped.status == "STOPPED"
    assert stopped.counts.get("STOPPED", 0) >= 1 and stopped.counts.get("PENDING", 0) >= 1
    assert stopped.worst() is BatchStatus.STOPPED
    monkeypatch.delenv(PAUSE_ENV)
    resumed = sqlite_engine.resume_backfill(handle.id).wait(60)
    assert resumed.status == "COMPLETED" and resumed.counts == {"COMPLETED": 10}
    assert rows(sqlite_engine) == days(1, 10)


def test_a_live_runner_cannot_be_resumed_beside(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resuming a backfill whose runner still beats is refused; an unknown id is NoSuchBackfill."""
    backfill_jobs.tables.create_all(sqlite_engine.repository.engine)  # type: ignore[attr-defined]
    sqlite_engine.register(backfill_jobs.build())
    monkeypatch.setenv(PAUSE_ENV, "0.05")
    handle = sqlite_engine.backfill(JOB_NAME, "day:date=2026-11-01..2026-11-04", concurrency=1)
    with pytest.raises(BackfillRunning, match="is RUNNING"):
        sqlite_engine.resume_backfill(handle.id)
    handle.stop()
    handle.wait(60)
    with pytest.raises(NoSuchBackfill):
        sqlite_engine.backfill_state(999)


class TestCommand:
    @pytest.fixture
    def cli(self, sqlite_url: str) -> Iterator[CliRunner]:
        with Engine(sqlite_url) as engine:
            backfill_jobs.tables.create_all(engine.repository.engine)  # type: ignore[attr-defined]
        yield CliRunner()

    def invoke(self, runner: CliRunner, url: str, *args: str) -> tuple[int, str]:
        argv = ["-r", url, "--jobs", "tests.jobs.backfill_jobs", "--no-progress", "backfill"]
        result = runner.invoke(main, [*argv, *args])
        return result.exit_code, result.output

    def test_exit_code_is_the_worst_outcome_and_dry_run_launches_nothing(
        self, cli: CliRunner, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A failed day exits 1 with the grid; --dry-run shows skip/run/restart and exits 0."""
        monkeypatch.setenv(FAIL_ENV, "2026-11-02")
        code, text = self.invoke(cli, sqlite_url, JOB_NAME, "--range",
                                 "day:date=2026-11-01..2026-11-03")  # fmt: skip
        assert code == 1, text
        assert "2026-11-02 failed" in text and "FAILED: 3/3 ended" in text
        code, text = self.invoke(cli, sqlite_url, JOB_NAME, "--range",
                                 "day:date=2026-11-01..2026-11-04", "--dry-run")  # fmt: skip
        assert code == 0, text
        assert "skip (use --restart-failed)" in text and "run" in text
        with Engine(sqlite_url) as engine:
            assert len(engine.list_executions(JOB_NAME)) == 3
        monkeypatch.delenv(FAIL_ENV)
        code, text = self.invoke(cli, sqlite_url, "--resume", "1")
        assert code == 1, text  # resume keeps the backfill's own choice: no --restart-failed
        code, text = self.invoke(cli, sqlite_url, JOB_NAME, "--values",
                                 "day:date=2026-11-02,2026-11-04", "--restart-failed")  # fmt: skip
        assert code == 0, text

    def test_bad_command_lines_are_one_line_errors(self, cli: CliRunner, sqlite_url: str) -> None:
        """No range, two ranges, a bad step: exit 2 with one line naming the fault."""
        for args, says in [
            ((JOB_NAME,), "give --range or --values"),
            ((JOB_NAME, "--range", NOVEMBER, "--values", "day=a"), "give --range or --values"),
            ((JOB_NAME, "--range", NOVEMBER, "--step", "0d"), "positive count"),
            ((), "missing JOB"),
        ]:
            code, text = self.invoke(cli, sqlite_url, *args)
            assert code == 2 and says in text and len(text.strip().splitlines()) == 1, text


def test_no_sqlite_in_memory_needed(tmp_path: Path) -> None:
    """The backfill table is created by the migration on a fresh repository."""
    with Engine(f"sqlite:///{tmp_path / 'r.db'}") as engine:
        assert engine.backfills() == []


def test_workers_on_sqlite_are_refused_before_anything_is_recorded(sqlite_engine: Engine) -> None:
    """A backfill queued to workers needs a server repository: refused, no backfill recorded."""
    from batchline.errors import ConfigurationError
    from batchline.remote import CeleryLauncher

    sqlite_engine.register(backfill_jobs.build())
    with pytest.raises(ConfigurationError, match="not SQLite"):
        sqlite_engine.backfill(JOB_NAME, NOVEMBER, on=CeleryLauncher("redis://127.0.0.1:1/0"))
    assert sqlite_engine.backfills() == []
