"""SQLite under a job that holds the write lock nearly all the time (issue: a stop could not get
in, a SIGTERM ended COMPLETED, readers waited for the job's end).

The job's chunk transactions each hold the lock for 0.1 s with a few microseconds between them,
so anything that needs the lock from another process would wait until the job has finished.
"""

from __future__ import annotations

import signal

import pytest

from batchline.testing import eventually
from tests.jobs import cli_jobs
from tests.test_cli_process import Output, batchline, cli_env, spawn

pytestmark = pytest.mark.slow

HOG = "tests.jobs.cli_jobs:hog_job"
ITEMS = 400  # 80 chunks of 0.1 s: the job would take 8 s to complete


def hog_env(url: str) -> dict[str, str]:
    env = cli_env(url)
    env[cli_jobs.HOG_ENV] = "0.1"
    return env


def _start_hog(url: str) -> tuple[Output, object]:
    cli_jobs.create_output(url)
    out = Output(url)
    child = spawn("start", HOG, f"count:int={ITEMS}", env=hog_env(url))
    eventually(lambda: len(out.items()) >= 10, timeout=60, message="two committed chunks")
    return out, child


def test_stop_from_another_process_gets_in(sqlite_url: str) -> None:
    """``batchline stop`` from another process stops the job at a chunk boundary (STOPPED,
    exit 3) long before its end, and says so with exit 0."""
    out, child = _start_hog(sqlite_url)
    [(execution_id, status, _)] = out.executions()
    assert status == "STARTED"
    stopped = batchline("stop", str(execution_id), env=hog_env(sqlite_url))
    assert stopped.returncode == 0, stopped.stderr
    _, stderr = child.communicate(timeout=60)  # type: ignore[attr-defined]
    assert child.returncode == 3, stderr  # type: ignore[attr-defined]
    [(_, status, _)] = out.executions()
    assert status == "STOPPED"
    written = len(out.items())
    assert written % 5 == 0 and written < ITEMS // 2, written
    restarted = batchline("restart", str(execution_id), "--job", HOG, env=cli_env(sqlite_url))
    assert restarted.returncode == 0, restarted.stderr
    assert sorted(out.items()) == list(range(ITEMS))
    out.bind.dispose()


def test_sigterm_stops_without_waiting_for_the_lock(sqlite_url: str) -> None:
    """SIGTERM to the job's process ends it STOPPED with exit 3, not COMPLETED."""
    out, child = _start_hog(sqlite_url)
    child.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
    _, stderr = child.communicate(timeout=60)  # type: ignore[attr-defined]
    assert child.returncode == 3, stderr  # type: ignore[attr-defined]
    [(_, status, _)] = out.executions()
    assert status == "STOPPED"
    assert len(out.items()) < ITEMS // 2
    out.bind.dispose()


def test_readers_do_not_wait_for_the_job(sqlite_url: str) -> None:
    """``batchline executions`` answers while the job runs, and shows it STARTED."""
    out, child = _start_hog(sqlite_url)
    try:
        listed = batchline("executions", env=hog_env(sqlite_url))
        assert listed.returncode == 0, listed.stderr
        assert "STARTED" in listed.stdout
        assert "COMPLETED" not in listed.stdout
    finally:
        child.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
        child.communicate(timeout=60)  # type: ignore[attr-defined]
        out.bind.dispose()
