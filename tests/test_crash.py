"""Crash tests: a chunk job in a subprocess, killed with SIGKILL and restarted until it completes.

The job (tests/jobs/crash_job.py) copies a source table into a target table in two chunk steps.
The parent kills it at deterministic points (the child kills itself at the n-th pass, n random)
and at random delays, marks each dead execution FAILED with ``recover(force=True)``, and restarts.
After every kill the committed rows must equal the committed counters; at the end the target must
hold every source row exactly once. The seed is in every failure message; rerun a failure with
BATCHLINE_CRASH_SEED=<seed>.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Engine, JobExecution, StepExecution
from batchline.testing import eventually
from tests.jobs import crash_job
from tests.jobs.crash_job import CHUNK_SIZE, JOB_NAME, ROWS, SPLIT, source, target

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 120.0


@dataclass
class Child:
    """One run of the job in a subprocess and how it ended."""

    plan: str
    returncode: int
    output: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


def run_child(
    url: str, restart: int | None, crash_at: str | None, delay: float | None, log: Path
) -> Child:
    """Run the job in a new process; SIGKILL it ``delay`` seconds after its job starts."""
    env = {k: v for k, v in os.environ.items() if k != crash_job.CRASH_ENV}
    if crash_at:
        env[crash_job.CRASH_ENV] = crash_at
    argv = [sys.executable, "-m", "tests.jobs.crash_job", url]
    if restart is not None:
        argv += ["--restart", str(restart)]
    with log.open("w+") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            if delay is not None:
                eventually(
                    lambda: "running " in log.read_text() or proc.poll() is not None,
                    timeout=CHILD_TIMEOUT,
                    interval=0.005,
                    message="the child's job never started",
                )
            proc.wait(timeout=delay if delay is not None else CHILD_TIMEOUT)
        except AssertionError:
            proc.kill()
            proc.wait()
            raise
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if delay is None:
                raise AssertionError(f"child did not end in {CHILD_TIMEOUT}s") from None
        out.seek(0)
        output = out.read()
    plan = crash_at or (f"delay {delay:.2f}s" if delay is not None else "none")
    return Child(plan, proc.returncode, output)


class Observer:
    """Reads what the repository and the target table hold, for the parent's assertions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.bind: sa.Engine = engine.repository.engine  # type: ignore[attr-defined]

    def executions(self) -> list[JobExecution]:
        """Every execution of the job, oldest first."""
        return sorted(self.engine.list_executions(JOB_NAME, limit=1000), key=lambda e: e.id)

    def steps(self) -> Iterator[StepExecution]:
        for execution in self.executions():
            yield from self.engine.step_executions(execution.id)

    def target_rows(self) -> list[tuple[int, str]]:
        with self.bind.connect() as conn:
            rows = conn.execute(sa.select(target.c.source_id, target.c.payload)).all()
        return sorted((r.source_id, r.payload) for r in rows)

    def source_rows(self) -> list[tuple[int, str]]:
        with self.bind.connect() as conn:
            rows = conn.execute(sa.select(source.c.id, source.c.payload)).all()
        return sorted((r.id, r.payload) for r in rows)

    def step_completed(self, name: str) -> bool:
        return any(s.step_name == name and s.status is BatchStatus.COMPLETED for s in self.steps())

    def remaining(self) -> int:
        """Rows the step now running (or next to run) has not committed yet."""
        written = self.target_rows()
        if not self.step_completed("copy_low"):
            return SPLIT - sum(1 for sid, _ in written if sid <= SPLIT)
        return ROWS - SPLIT - sum(1 for sid, _ in written if sid > SPLIT)


def scenario(rng: random.Random) -> list[str]:
    """Kill points in an order where each one is reached: three in copy_low, its end, the
    step boundary, one in copy_high, then three at random delays after the job starts."""
    in_chunk = ["reader", "writer", "after_chunk"]
    rng.shuffle(in_chunk)
    return [*in_chunk, "step_end", "between_steps", rng.choice(in_chunk), *["delay"] * 3]


def crash_spec(point: str, remaining: int, rng: random.Random) -> str:
    """``point:n`` with n within the first quarter of the work left, so the point is reached."""
    units = remaining if point == "reader" else remaining // CHUNK_SIZE
    n = rng.randint(1, max(1, units // 4)) if point in ("reader", "writer", "after_chunk") else 1
    return f"{point}:{n}"


class TestSigkill:
    def test_killed_at_every_point_restarts_to_exactly_once_output(
        self, db_url: str, engine: Engine, tmp_path: Path
    ) -> None:
        """SIGKILL at each kill point and at random delays: restarts copy every row exactly once."""
        seed = int(os.environ.get("BATCHLINE_CRASH_SEED") or random.randrange(2**32))
        rng = random.Random(seed)
        observer = Observer(engine)
        crash_job.create_tables(observer.bind)
        engine.register(crash_job.build_job(observer.bind))
        history: list[Child] = []

        def where() -> str:
            runs = "; ".join(f"{c.plan} -> rc {c.returncode}" for c in history)
            return f"seed {seed} (rerun with BATCHLINE_CRASH_SEED={seed}); runs: {runs}"

        def last_execution() -> JobExecution | None:
            found = observer.executions()
            return found[-1] if found else None

        for number, point in enumerate(scenario(rng)):
            last = last_execution()
            if last is not None and last.status is BatchStatus.COMPLETED:
                break  # a delay kill came after the end
            if point == "delay":
                spec, delay = None, rng.uniform(0.0, 0.4)
            else:
                spec, delay = crash_spec(point, observer.remaining(), rng), None
            restart = last.id if last is not None else None
            child = run_child(db_url, restart, spec, delay, tmp_path / f"child-{number}.log")
            history.append(child)
            if spec is not None:
                assert child.killed, f"{spec} was not reached: {child.output[-3000:]} {where()}"
            else:
                assert child.returncode in (0, -signal.SIGKILL), f"{child.output[-3000:]} {where()}"

            dead = last_execution()
            if dead is not None and dead.status.is_running:
                recovered = engine.recover(dead.id, force=True)
                assert [e.status for e in recovered] == [BatchStatus.FAILED], where()
                running = [s for s in engine.step_executions(dead.id) if s.status.is_running]
                assert running == [], f"steps left running after recover: {running} {where()}"

            written = observer.target_rows()
            steps = list(observer.steps())
            assert len(set(written)) == len(written), f"a row was written twice; {where()}"
            assert sum(s.write_count for s in steps) == len(written), (
                f"committed counters disagree with committed rows after {child.plan}; {where()}"
            )
            assert sum(s.read_count for s in steps) == len(written), where()

        last = last_execution()
        assert last is not None, where()
        if last.status is not BatchStatus.COMPLETED:
            final = engine.restart(last.id)
            assert final.status is BatchStatus.COMPLETED, f"{final.exit_status} {where()}"

        assert observer.target_rows() == observer.source_rows(), f"output differs; {where()}"
        executions = observer.executions()
        assert [e.status for e in executions[:-1]] == [BatchStatus.FAILED] * (
            len(executions) - 1
        ), where()
        assert executions[-1].status is BatchStatus.COMPLETED, where()
        assert len({e.instance.id for e in executions}) == 1, where()
        assert sum(c.killed for c in history) >= 6, f"too few kills happened; {where()}"
        steps = list(observer.steps())
        for name, rows in (("copy_low", SPLIT), ("copy_high", ROWS - SPLIT)):
            mine = [s for s in steps if s.step_name == name]
            assert sum(s.write_count for s in mine) == rows, f"{name}: {mine} {where()}"
            assert sum(s.read_count for s in mine) == rows, f"{name}: {where()}"
            assert [s.status for s in mine].count(BatchStatus.COMPLETED) == 1, where()
