"""Schedules from a TOML file (serve --schedules): checked before anything runs, listed with
their next fire times, and the executions each launched found again in the repository."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from batchline import BatchStatus, Engine, JobBuilder, StepBuilder
from batchline.errors import ConfigurationError
from batchline.triggers.schedule_file import scheduler_from_file

GOOD = """
timezone = "UTC"
misfire_grace_time = 60

[[schedule]]
job = "nightly"
cron = "0 2 * * *"
parameters = ["region=eu"]
non_identifying = ["note=server"]
id = "nightly-eu"

[[schedule]]
job = "nightly"
cron = "30 3 * * 1-5"
parameters = ["region=us"]
"""


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    sqlite_engine.register(
        JobBuilder("nightly").step(StepBuilder("s").task(lambda se: None)).build()
    )
    return sqlite_engine


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schedules.toml"
    path.write_text(text, encoding="utf-8")
    return path


class TestScheduleFile:
    def test_schedules_and_next_fire_times(self, engine: Engine, tmp_path: Path) -> None:
        """Each [[schedule]] is added with its id, cron text and parameters; started, each
        has a next fire time at its cron's minute."""
        scheduler = scheduler_from_file(engine, written(tmp_path, GOOD))
        scheduler.start()
        try:
            eu, us = scheduler.schedules()
        finally:
            scheduler.shutdown()
        assert (eu.id, eu.job_name, eu.cron, eu.timezone) == (
            "nightly-eu",
            "nightly",
            "0 2 * * *",
            "UTC",
        )
        assert eu.parameters["region"] == "eu" and not eu.parameters.parameter("note").identifying
        assert us.cron == "30 3 * * 1-5" and us.id != eu.id
        assert eu.next_fire_time is not None and us.next_fire_time is not None
        assert (eu.next_fire_time.hour, eu.next_fire_time.minute) == (2, 0)
        assert (us.next_fire_time.hour, us.next_fire_time.minute) == (3, 30)
        assert us.next_fire_time.weekday() < 5
        assert eu.next_fire_time > dt.datetime.now(dt.UTC) - dt.timedelta(seconds=61)

    def test_launched_by_finds_each_schedules_executions(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        """An occurrence fired for one schedule counts for it, not for the other, nor does a
        run started by hand."""
        scheduler = scheduler_from_file(engine, written(tmp_path, GOOD))
        eu, us = scheduler.schedules()
        fired = scheduler.fire("nightly", dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC), eu.parameters)
        assert fired is not None and fired.wait(30).status is BatchStatus.COMPLETED
        by_hand = engine.start("nightly", {"region": "eu"})
        newest = engine.find_executions().items
        assert [e.id for e in scheduler.launched_by(eu, newest)] == [fired.execution_id]
        assert scheduler.launched_by(us, newest) == []
        assert by_hand.id not in [e.id for e in scheduler.launched_by(eu, newest)]

    def test_overlap_false_is_taken_from_the_file(self, engine: Engine, tmp_path: Path) -> None:
        """overlap = false in a [[schedule]] reaches the scheduler; the default overlaps."""
        text = GOOD.replace('id = "nightly-eu"', 'id = "nightly-eu"\noverlap = false', 1)
        assert text != GOOD
        eu, us = scheduler_from_file(engine, written(tmp_path, text)).schedules()
        assert (eu.overlap, us.overlap) == (False, True)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("[[schedule]]\njob = 'nightly'\n", "'cron' must be a non-empty string"),
            ("[[schedule]]\njob = 'ghost'\ncron = '* * * * *'\n", "ghost"),
            ("[[schedule]]\njob = 'nightly'\ncron = '61 * * * *'\n", "cron expression"),
            ("[[schedule]]\njob = 'nightly'\ncron = '* * * * *'\ncolor = 1\n", "unknown keys"),
            ("[[schedule]]\njob = 'nightly'\ncron = '* * * * *'\nparameters = 'a=1'\n", "list"),
            ("[[schedule]]\njob = 'nightly'\ncron = '* * * * *'\nparameters = ['a']\n", "a"),
            (
                "timezone = 'Mars/Olympus'\n[[schedule]]\njob = 'nightly'\ncron = '* * * * *'\n",
                "Mars",
            ),
            ("title = 'x'\n", "unknown keys"),
            (
                "[[schedule]]\njob = 'nightly'\ncron = '* * * * *'\noverlap = 'no'\n",
                "'overlap' must be true or false",
            ),
            ("", "no [[schedule]]"),
            ("[[schedule]\n", "schedules.toml"),
        ],
    )
    def test_errors_name_the_file_and_schedule(
        self, engine: Engine, tmp_path: Path, text: str, message: str
    ) -> None:
        with pytest.raises(ConfigurationError, match=r"schedule file .*schedules\.toml") as caught:
            scheduler_from_file(engine, written(tmp_path, text))
        assert message in str(caught.value)
