"""Two processes racing to start the same job instance: exactly one runs it.

Both processes (tests/jobs/race_job.py) wait on a barrier file, then call ``engine.start`` with
the same identifying parameters, for several rounds with new parameters each round. In the last
rounds the instance already has a FAILED execution, so the race is on the restart path.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import IO

import pytest

from batchline import BatchStatus, Engine, JobBuilder, StepBuilder, StepExecution
from tests.jobs.race_job import JOB_NAME

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 4
PRE_FAILED = {2, 3}  # rounds whose instance has a FAILED execution before the race
LOSER_ERRORS = {"JobExecutionAlreadyRunning", "JobInstanceAlreadyComplete"}


def expect_line(stream: IO[str], prefix: str, log: Path) -> str:
    line = stream.readline().strip()
    assert line.startswith(prefix), f"expected {prefix!r}, got {line!r}; log: {log.read_text()}"
    return line


def fail_once(engine: Engine, number: int) -> None:
    """Record a FAILED execution of round ``number``'s instance (same job and step names)."""

    def broken(se: StepExecution) -> None:
        raise RuntimeError("first attempt fails")

    job = JobBuilder(JOB_NAME).step(StepBuilder("work").task(broken)).build()
    assert engine.start(job, {"round": number}).status is BatchStatus.FAILED


class TestLaunchRace:
    def test_one_of_two_racing_processes_runs_each_instance(
        self, db_url: str, engine: Engine, tmp_path: Path
    ) -> None:
        """Each round one racer completes, the other is refused; one execution per launch."""
        for number in PRE_FAILED:
            fail_once(engine, number)
        racers = []
        logs = [tmp_path / f"racer-{n}.log" for n in range(2)]
        argv = [sys.executable, "-m", "tests.jobs.race_job", db_url, str(tmp_path), str(ROUNDS)]
        try:
            for log in logs:
                with log.open("w") as err:
                    racers.append(
                        subprocess.Popen(
                            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True
                        )
                    )
            for number in range(ROUNDS):
                for racer, log in zip(racers, logs, strict=True):
                    assert racer.stdout is not None
                    expect_line(racer.stdout, f"ready {number}", log)
                (tmp_path / f"go-{number}").touch()
                results = []
                for racer, log in zip(racers, logs, strict=True):
                    assert racer.stdout is not None
                    results.append(expect_line(racer.stdout, f"result {number} ", log).split())
                kinds = Counter(r[2] for r in results)
                assert kinds[BatchStatus.COMPLETED.value] == 1, f"round {number}: {results}"
                loser = next(r for r in results if r[2] != BatchStatus.COMPLETED.value)
                assert loser[2] in LOSER_ERRORS, f"round {number}: {results}"
                assert f"'{JOB_NAME}'" in " ".join(loser), f"round {number}: {results}"
            for racer in racers:
                assert racer.wait(timeout=60) == 0
        finally:
            for racer in racers:
                if racer.poll() is None:
                    racer.kill()
                    racer.wait()

        executions = sorted(engine.list_executions(JOB_NAME, limit=100), key=lambda e: e.id)
        by_round: dict[object, list[BatchStatus]] = {}
        for execution in executions:
            by_round.setdefault(execution.parameters["round"], []).append(execution.status)
        assert len({e.instance.id for e in executions}) == ROUNDS
        for number in range(ROUNDS):
            expected = [BatchStatus.COMPLETED]
            if number in PRE_FAILED:
                expected = [BatchStatus.FAILED, *expected]
            assert by_round[number] == expected, f"round {number}: {executions}"
