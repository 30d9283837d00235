"""Crash test: ``batchline backfill`` over 30 days at concurrency 4, SIGKILLed at random
moments and resumed (``--resume ID``) each time, on PostgreSQL and MariaDB.

Each kill leaves up to four executions running with nobody behind them and a backfill whose
runner stopped beating; the resume waits out the runner's lease, recovers the orphans and
restarts them from their last commit. At the end every day's instance has exactly one
COMPLETED execution and the output holds each day's rows exactly once. The seed is in every
failure message; rerun one with BATCHLINE_CRASH_SEED=<seed>.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Engine
from batchline.testing import eventually
from tests.backends import fresh_database
from tests.jobs import backfill_jobs
from tests.jobs.backfill_jobs import JOB_NAME, ROWS, out

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DAYS = 30
KILLS = 10
LEASE = ["--lease", "2", "--heartbeat-interval", "0.4"]
CHILD_TIMEOUT = 120.0


@pytest.fixture(params=["postgresql", "mariadb"])
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


def run_cli(url: str, args: list[str], kill_after: float | None, log: Path) -> int:
    """``batchline backfill ...`` in a new process; SIGKILLed ``kill_after`` seconds after it
    says the backfill started."""
    env = {**os.environ, backfill_jobs.PAUSE_ENV: "0.04"}
    argv = [sys.executable, "-m", "batchline", "-r", url, "--jobs", "tests.jobs.backfill_jobs"]
    argv += [*LEASE, "--no-progress", "-q", "backfill", *args]
    with log.open("w+") as output:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            if kill_after is not None:
                eventually(
                    lambda: " started" in log.read_text() or proc.poll() is not None,
                    timeout=CHILD_TIMEOUT,
                    interval=0.01,
                    message="the backfill never started",
                )
            proc.wait(timeout=kill_after if kill_after is not None else CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        except AssertionError:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode


def test_killed_backfill_resumes_to_each_instance_completed_once(
    server_url: str, tmp_path: Path
) -> None:
    """Ten SIGKILLs at random moments, each resumed: 30 instances each COMPLETED exactly once,
    and each day's rows written exactly once."""
    seed = int(os.environ.get("BATCHLINE_CRASH_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    engine = Engine(server_url)
    bind: sa.Engine = engine.repository.engine  # type: ignore[attr-defined]
    backfill_jobs.tables.create_all(bind)
    codes: list[int] = []

    def where() -> str:
        return f"seed {seed} (rerun with BATCHLINE_CRASH_SEED={seed}); exit codes {codes}"

    first = ["daily_load", "--range", f"day:date=2026-11-01..2026-11-{DAYS}", "--concurrency", "4"]
    try:
        for number in range(KILLS):
            args = first if number == 0 else ["--resume", "1"]
            codes.append(
                run_cli(server_url, args, rng.uniform(0.05, 0.6), tmp_path / f"{number}.log")
            )
            if codes[-1] != -signal.SIGKILL:
                break
        if codes[-1] == -signal.SIGKILL:
            codes.append(run_cli(server_url, ["--resume", "1"], None, tmp_path / "last.log"))
        assert codes[-1] == 0, f"{(tmp_path / 'last.log').read_text()[-3000:]} {where()}"
        assert codes.count(-signal.SIGKILL) >= KILLS, f"too few kills; {where()}"

        executions = engine.list_executions(JOB_NAME, limit=1000)
        completed = Counter(e.instance.id for e in executions if e.status is BatchStatus.COMPLETED)
        assert len(completed) == DAYS, where()
        assert set(completed.values()) == {1}, f"an instance completed twice; {where()}"
        assert not [e for e in executions if e.status.is_running], where()
        with bind.connect() as conn:
            rows = conn.execute(sa.select(out.c.day, out.c.n)).all()
        expected = {(f"2026-11-{d:02d}", n) for d in range(1, DAYS + 1) for n in range(ROWS)}
        assert Counter(rows) == Counter(expected), f"output differs; {where()}"
        assert engine.backfill_state(1).status == "COMPLETED", where()
    finally:
        engine.close()


def test_sigterm_stops_the_backfill_and_resume_finishes(tmp_path: Path) -> None:
    """SIGTERM: the running executions end STOPPED, nothing more is launched, exit 3;
    ``--resume`` restarts the stopped ones and runs the rest, exit 0, rows exact."""
    url = f"sqlite:///{tmp_path / 'repository.db'}"
    with Engine(url) as engine:
        backfill_jobs.tables.create_all(engine.repository.engine)  # type: ignore[attr-defined]
    log = tmp_path / "first.log"
    # 0.4 s an item, 4.8 s an execution: the two running ones are still running when the
    # signal lands, even on a loaded machine (at 0.1 s both once completed first in CI).
    env = {**os.environ, backfill_jobs.PAUSE_ENV: "0.4"}
    argv = [sys.executable, "-m", "batchline", "-r", url, "--jobs", "tests.jobs.backfill_jobs"]
    argv += ["--no-progress", "-q", "backfill", "daily_load", "--range"]
    argv += ["day:date=2026-11-01..2026-11-10", "--concurrency", "2"]
    with log.open("w+") as output:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        eventually(lambda: "STARTED" in log.read_text(), timeout=60, message="nothing started")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 3, log.read_text()
    with Engine(url) as engine:
        state = engine.backfill_state(1)
        assert state.status == "STOPPED", log.read_text()
        assert state.counts.get("STOPPED", 0) >= 1 and state.counts.get("PENDING", 0) >= 1
    assert run_cli(url, ["--resume", "1"], None, tmp_path / "resume.log") == 0
    with Engine(url) as engine:
        bind: sa.Engine = engine.repository.engine  # type: ignore[attr-defined]
        with bind.connect() as conn:
            rows = conn.execute(sa.select(out.c.day, out.c.n)).all()
        assert engine.backfill_state(1).counts == {"COMPLETED": 10}
    expected = {(f"2026-11-{d:02d}", n) for d in range(1, 11) for n in range(ROWS)}
    assert Counter(rows) == Counter(expected)
