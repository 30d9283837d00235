"""A new instance on demand: the next run.id, nothing carried unless asked, races decided by
the database."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchline import BatchStatus, Engine, JobBuilder, ParameterError, StepBuilder
from batchline.cli import main
from tests.jobs.next_instance_job import JOB_NAME

ROOT = Path(__file__).resolve().parent.parent


def nightly(engine: Engine) -> None:
    engine.register(JobBuilder(JOB_NAME).step(StepBuilder("work").task(lambda se: None)).build())


class TestNextInstance:
    def test_run_ids_count_up(self, engine: Engine) -> None:
        """Each call is a new instance whose run.id is one more than the last."""
        nightly(engine)
        ids = [engine.start_next_instance(JOB_NAME).parameters["run.id"] for _ in range(3)]
        assert ids == [1, 2, 3]

    def test_after_a_failure_still_a_new_instance(self, engine: Engine) -> None:
        """A failed last instance is not restarted: the next call starts a new one."""
        calls: list[int] = []

        def fails_first(se: object) -> None:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("first run fails")

        engine.register(JobBuilder(JOB_NAME).step(StepBuilder("w").task(fails_first)).build())
        first = engine.start_next_instance(JOB_NAME)
        assert first.status is BatchStatus.FAILED
        second = engine.start_next_instance(JOB_NAME)
        assert second.status is BatchStatus.COMPLETED
        assert second.instance.id != first.instance.id
        assert second.parameters["run.id"] == 2

    def test_carries_nothing_unless_asked(self, engine: Engine) -> None:
        """Old parameters stay behind; `carry` copies the named ones, identifying or not."""
        nightly(engine)
        date = dt.date(2026, 11, 28)
        engine.start(JOB_NAME, {"date": date, "region": "eu"})
        plain = engine.start_next_instance(JOB_NAME)
        assert dict(plain.parameters) == {"run.id": 1}
        engine.start(JOB_NAME, {"date": date, "region": "eu", "run.id": 7})
        carried = engine.start_next_instance(JOB_NAME, {"region": "us"}, carry=["date", "region"])
        assert dict(carried.parameters) == {"date": date, "region": "us", "run.id": 8}

    def test_run_id_is_not_passed_in(self, sqlite_engine: Engine) -> None:
        """Passing run.id yourself is refused, saying why."""
        nightly(sqlite_engine)
        with pytest.raises(ParameterError, match=r"'run\.id' is chosen by start_next_instance"):
            sqlite_engine.start_next_instance(JOB_NAME, {"run.id": 3})

    def test_an_id_taken_by_another_launcher_is_skipped(self, engine: Engine) -> None:
        """run.id 2 already exists though the newest execution says 1: the launch takes 3."""
        nightly(engine)
        engine.start(JOB_NAME, {"run.id": 2})
        engine.start(JOB_NAME, {"run.id": 1})
        assert engine.start_next_instance(JOB_NAME).parameters["run.id"] == 3


class TestRace:
    def test_two_processes_get_two_instances(self, db_url: str, tmp_path: Path) -> None:
        """Two processes calling start_next_instance at once get distinct run.ids, both run."""
        go = tmp_path / "go"
        argv = [sys.executable, "-m", "tests.jobs.next_instance_job", db_url, str(go)]
        with Engine(db_url):  # create the schema before the racers start
            pass
        racers = [
            subprocess.Popen(
                argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        try:
            for racer in racers:
                assert racer.stdout is not None
                assert racer.stdout.readline().strip() == "ready", racer.stderr
            go.touch()
            outputs = [racer.communicate(timeout=120) for racer in racers]
        finally:
            for racer in racers:
                if racer.poll() is None:
                    racer.kill()
        assert [r.returncode for r in racers] == [0, 0], [err for _, err in outputs]
        results = sorted(out.split() for out, _ in outputs)
        assert [r[0] for r in results] == ["1", "2"]
        assert all(r[2] == "COMPLETED" for r in results)


class TestCli:
    def test_start_next(self, sqlite_url: str) -> None:
        """`batchline start --next` starts run.id 1, then 2; --carry copies a parameter."""
        runner = CliRunner()
        job = "tests.jobs.next_instance_job:job"
        base = ["--repository", sqlite_url, "--no-progress", "start"]
        first = runner.invoke(main, [*base, "--next", job, "region=eu"])
        assert first.exit_code == 0, first.output
        assert "run.id:int=1" in first.stdout
        second = runner.invoke(main, [*base, "--next", "--carry", "region", job])
        assert second.exit_code == 0, second.output
        assert "run.id:int=2" in second.stdout and "region:str=eu" in second.stdout

    def test_carry_without_next_is_a_usage_error(self, sqlite_url: str) -> None:
        """--carry alone is refused (exit 2)."""
        result = CliRunner().invoke(
            main, ["-r", sqlite_url, "start", "--carry", "x", "tests.jobs.next_instance_job:job"]
        )
        assert result.exit_code == 2 and "--carry goes with --next" in result.output
