"""Frozen processes: a job SIGSTOPped past its lease, recovered and restarted by another process,
then thawed (SIGCONT). The stale process must write nothing more, the restart must complete, and
the output must equal a clean run's: a file writer (no transaction fences a file) and a writer
into the repository's database (the version check fences it).

Each round freezes the job at a random moment (the seed is printed on failure); the stale job
must end FAILED (exit 1), never COMPLETED.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from batchline import BatchStatus, Engine
from batchline.testing import eventually
from tests.backends import fresh_database
from tests.items import file_job
from tests.items.test_file_crash import ROWS, make_input, run_child
from tests.jobs import cli_jobs
from tests.test_cli_process import Output, cli_env, spawn

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
LEASE = 2.0


def _file_job(url: str, source: Path, target: Path, restart: int | None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != file_job.CRASH_ENV}
    env[file_job.LEASE_ENV] = str(LEASE)
    if restart is None:
        env[file_job.DELAY_ENV] = "0.002"  # 1200 rows in about 2.5 s: time to freeze it
    argv = [sys.executable, "-m", "tests.items.file_job", url, str(source), str(target)]
    if restart is not None:
        argv += ["--restart", str(restart)]
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _thaw_once_replaced(stale: subprocess.Popen[str], replaced: Callable[[], bool]) -> bool:
    """Thaw the stale process once its replacement has recovered the execution (and now runs,
    or waits for the stale process's file lock); True if it did. Frozen inside a chunk's
    transaction, the stale process holds locks nobody can take (on SQLite the write lock): no
    recovery can happen then, so after 10 s it is thawed anyway and keeps its execution."""
    try:
        eventually(replaced, timeout=10, interval=0.05, message="no recovery")
    except AssertionError:
        stale.send_signal(signal.SIGCONT)
        return False
    stale.send_signal(signal.SIGCONT)
    return True


@pytest.mark.parametrize("round_", range(3))
def test_frozen_file_writer_writes_nothing_after_its_lease(round_: int, tmp_path: Path) -> None:
    """SIGSTOP past the lease, restart elsewhere, SIGCONT: the file equals a clean run's, with
    one footer at its end, and the stale job ends FAILED (or, frozen inside a transaction,
    keeps its execution and completes it while the restart is refused)."""
    seed = int(os.environ.get("BATCHLINE_CRASH_SEED") or random.randrange(2**32))
    rng = random.Random(seed + round_)
    source = tmp_path / "in.csv"
    make_input(source)
    clean = tmp_path / "clean.csv"
    assert run_child(f"sqlite:///{tmp_path / 'clean.db'}", source, clean, None, None, None) == 0

    url = f"sqlite:///{tmp_path / 'repository.db'}"
    target = tmp_path / "out.csv"
    stale = _file_job(url, source, target, None)
    with Engine(url) as engine:

        def committed() -> bool:
            executions = engine.list_executions(file_job.JOB_NAME)
            steps = engine.step_executions(executions[0].id) if executions else []
            return bool(steps and steps[0].commit_count >= 2)

        eventually(committed, timeout=60, interval=0.02, message="no chunk committed")
        time.sleep(rng.uniform(0.0, 0.8))
        stale.send_signal(signal.SIGSTOP)
        try:
            [execution] = engine.list_executions(file_job.JOB_NAME)
            time.sleep(LEASE + 1.0)
            restart = _file_job(url, source, target, execution.id)
            taken_over = _thaw_once_replaced(stale, lambda: _recovered(engine, execution.id))
            restart_out, _ = restart.communicate(timeout=120)
            stale_out, _ = stale.communicate(timeout=60)
        finally:
            stale.send_signal(signal.SIGCONT)
            stale.kill()
        statuses = [e.status for e in engine.list_executions(file_job.JOB_NAME)]
        if statuses == [BatchStatus.COMPLETED, BatchStatus.FAILED]:  # taken over
            assert restart.returncode == 0, f"seed {seed}: {restart_out[-3000:]}"
            assert stale.returncode == 1, f"seed {seed}: the stale job ended {stale_out[-3000:]}"
            assert "COMPLETED" not in stale_out.splitlines()[-1], stale_out[-2000:]
        else:  # frozen holding the lock: it kept its execution, the restart was refused
            assert statuses == [BatchStatus.COMPLETED], f"seed {seed}: {statuses}"
            assert not taken_over and stale.returncode == 0, f"seed {seed}: {stale_out[-3000:]}"
            assert restart.returncode != 0 and "lease" in restart_out, restart_out[-2000:]
    text = target.read_text(encoding="utf-8")
    assert text.count("# ") == 1 and text.endswith(f"# {ROWS} rows\n"), f"seed {seed}"
    assert target.read_bytes() == clean.read_bytes(), f"output differs (seed {seed})"


def _stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP): its state in /proc is T."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().rpartition(")")[2].split()[0] == "T"


def test_a_job_thawed_inside_its_chunk_does_not_block_its_restart(tmp_path: Path) -> None:
    """Frozen inside its third chunk's transaction (holding SQLite's write lock) past its lease,
    a restart waiting to recover it, then thawed: the stale process renews nothing (its chunk
    saw the lease run out), so the restart recovers it and completes, the stale job ends
    FAILED, and the file equals a clean run's."""
    source = tmp_path / "in.csv"
    make_input(source)
    clean = tmp_path / "clean.csv"
    assert run_child(f"sqlite:///{tmp_path / 'clean.db'}", source, clean, None, None, None) == 0
    url = f"sqlite:///{tmp_path / 'repository.db'}"
    target = tmp_path / "out.csv"
    env = {k: v for k, v in os.environ.items() if k != file_job.CRASH_ENV}
    env.update({file_job.LEASE_ENV: str(LEASE), file_job.FREEZE_ENV: "before_commit:3"})
    argv = [sys.executable, "-m", "tests.items.file_job", url, str(source), str(target)]
    stale = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        eventually(lambda: _stopped(stale.pid), timeout=60, message="the job never froze")
        time.sleep(LEASE + 1.0)
        with Engine(url) as engine:
            [execution] = engine.list_executions(file_job.JOB_NAME)
            restart = _file_job(url, source, target, execution.id)
            time.sleep(1.0)  # the restart waits for the write lock to recover the execution
            stale.send_signal(signal.SIGCONT)
            restart_out, _ = restart.communicate(timeout=120)
            stale_out, _ = stale.communicate(timeout=60)
            statuses = [e.status for e in engine.list_executions(file_job.JOB_NAME)]
    finally:
        stale.send_signal(signal.SIGCONT)
        stale.kill()
    assert restart.returncode == 0, restart_out[-3000:]
    assert stale.returncode == 1, stale_out[-3000:]
    assert statuses == [BatchStatus.COMPLETED, BatchStatus.FAILED]
    assert target.read_bytes() == clean.read_bytes()


def _recovered(engine: Engine, execution_id: int) -> bool:
    return engine.get_execution(execution_id).status is BatchStatus.FAILED


COUNT = "tests.jobs.cli_jobs:count_job"
ITEMS = 400


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_frozen_repository_writer_commits_nothing_after_its_lease(
    backend: str, tmp_path: Path
) -> None:
    """The same with a writer into the repository's database: every item exactly once."""
    seed = int(os.environ.get("BATCHLINE_CRASH_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    with fresh_database(backend, tmp_path) as url:
        cli_jobs.create_output(url)
        out = Output(url)
        env = cli_env(url, delay=0.01, lease=LEASE)
        env["BATCHLINE_HEARTBEAT_INTERVAL"] = str(LEASE / 5)
        stale = spawn("start", COUNT, f"count:int={ITEMS}", env=env)
        eventually(lambda: len(out.items()) >= 20, timeout=60, message="no chunk committed")
        time.sleep(rng.uniform(0.0, 0.3))
        stale.send_signal(signal.SIGSTOP)
        try:
            [(execution_id, _, _)] = out.executions()
            time.sleep(LEASE + 1.0)
            fast = cli_env(url, lease=LEASE)
            restart = spawn("restart", str(execution_id), "--job", COUNT, env=fast)
            taken_over = _thaw_once_replaced(stale, lambda: len(out.executions()) == 2)
            _, restart_err = restart.communicate(timeout=120)
            _, stale_err = stale.communicate(timeout=60)
        finally:
            stale.send_signal(signal.SIGCONT)
            stale.kill()
        statuses = [status for _, status, _ in out.executions()]
        if statuses == ["FAILED", "COMPLETED"]:  # taken over
            assert restart.returncode == 0, f"seed {seed}: {restart_err[-3000:]}"
            assert stale.returncode != 0, f"seed {seed}: the stale job completed: {stale_err}"
        else:  # frozen holding locks: it kept its execution, the restart was refused
            assert statuses == ["COMPLETED"], f"seed {seed}: {statuses}"
            assert not taken_over and stale.returncode == 0, f"seed {seed}: {stale_err[-3000:]}"
            assert restart.returncode == 4, f"seed {seed}: {restart_err[-2000:]}"
        assert sorted(out.items()) == list(range(ITEMS)), f"seed {seed}: lost or doubled"
        out.bind.dispose()
