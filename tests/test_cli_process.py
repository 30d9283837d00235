"""The CLI as a real process: SIGKILL and lease recovery, SIGTERM/SIGINT stops, bad input.

Jobs come from tests/jobs/cli_jobs.py; ``cli_count`` writes every item into ``cli_output``
through the chunk's transaction, so "exactly once" is a count of rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from batchline.cli.output import EXIT_REFUSED, EXIT_STOPPED, EXIT_UNREACHABLE, EXIT_USAGE
from batchline.testing import eventually
from tests.backends import fresh_database
from tests.jobs import cli_jobs

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
COUNT = "tests.jobs.cli_jobs:count_job"
ITEMS = 400


def cli_env(url: str, *, delay: float = 0.0, lease: float = 30.0) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        BATCHLINE_REPOSITORY=url,
        BATCHLINE_HEARTBEAT_INTERVAL="0.2",
        BATCHLINE_LEASE=str(lease),
        CLI_JOBS_DELAY=str(delay),
    )
    return env


def batchline(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchline", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def spawn(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "batchline", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Output:
    """What cli_output and the repository hold, read with plain SQL."""

    def __init__(self, url: str) -> None:
        self.bind = sa.create_engine(url)

    def items(self) -> list[int]:
        with self.bind.connect() as conn:
            return list(conn.execute(sa.select(cli_jobs.output.c.item)).scalars())

    def executions(self) -> list[tuple[int, str, str]]:
        with self.bind.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT id, status, exit_message FROM batch_job_execution ORDER BY id")
            )
            return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def expiry_of(message: str) -> dt.datetime:
    found = re.search(r"lease runs until (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", message)
    assert found, message
    return dt.datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigkill_restart_waits_for_the_lease_then_completes_once(
    backend: str, tmp_path: Path
) -> None:
    """Killed with SIGKILL: restart refuses (exit 4, says when the lease expires); after the
    expiry it recovers the dead execution and completes; every item is written exactly once."""
    with fresh_database(backend, tmp_path) as url:
        cli_jobs.create_output(url)
        out = Output(url)
        child = spawn("start", COUNT, f"count:int={ITEMS}", env=cli_env(url, delay=0.004, lease=3))
        eventually(
            lambda: len(out.items()) >= 60, timeout=60, message="the child committed no chunks"
        )
        child.kill()
        child.wait()
        [(dead_id, status, _)] = out.executions()
        assert status == "STARTED"

        fast = cli_env(url, lease=3)
        refused = batchline("restart", str(dead_id), "--job", COUNT, env=fast)
        assert refused.returncode == EXIT_REFUSED, refused.stderr
        [line] = refused.stderr.strip().splitlines()
        assert "Traceback" not in refused.stderr
        expires = expiry_of(line)

        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        time.sleep(max(0.0, (expires - now).total_seconds()) + 1.1)  # whole seconds shown
        restarted = batchline("restart", str(dead_id), "--job", COUNT, env=fast)
        assert restarted.returncode == 0, restarted.stderr
        assert "COMPLETED" in restarted.stdout

        (first, first_status, message), (_, last_status, _) = out.executions()
        assert (first, first_status, last_status) == (dead_id, "FAILED", "COMPLETED")
        assert "stopped sending heartbeats" in message
        items = out.items()
        assert sorted(items) == list(range(ITEMS)), "an item lost or written twice"
        out.bind.dispose()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signals_after_the_outcome_leave_the_exit_code_to_the_status(
    signum: signal.Signals, sqlite_url: str
) -> None:
    """Signals sent again and again from the moment the CLI has printed a COMPLETED outcome
    until it exits: it exits 0, as the recorded status says, never 143 or 130."""
    cli_jobs.create_output(sqlite_url)
    env = cli_env(sqlite_url)
    env["PYTHONUNBUFFERED"] = "1"  # the outcome reaches the pipe when it is printed
    child = spawn("start", COUNT, "count:int=20", env=env)
    assert child.stdout is not None
    try:
        for line in child.stdout:
            if "COMPLETED" in line:
                break
        else:
            raise AssertionError(f"no outcome printed: {child.communicate()[1][-2000:]}")
        while child.poll() is None:
            child.send_signal(signum)
            time.sleep(0.001)
        _, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, stderr[-2000:]
    assert Output(sqlite_url).executions()[0][1] == "COMPLETED"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_at_a_chunk_boundary_and_restart_completes(
    signum: signal.Signals, sqlite_url: str
) -> None:
    """SIGTERM or SIGINT: the job ends STOPPED with exit 3; restart completes, no duplicates."""
    cli_jobs.create_output(sqlite_url)
    out = Output(sqlite_url)
    child = spawn("start", COUNT, f"count:int={ITEMS}", env=cli_env(sqlite_url, delay=0.01))
    eventually(lambda: len(out.items()) >= 30, timeout=60, message="the child committed no chunks")
    child.send_signal(signum)
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == EXIT_STOPPED, stderr
    assert "STOPPED" in stdout
    assert f"{signum.name} received" in stderr
    assert "Traceback" not in stderr
    [(stopped_id, status, _)] = out.executions()
    assert status == "STOPPED"
    stopped_at = len(out.items())
    assert stopped_at % 10 == 0 and stopped_at < ITEMS  # whole chunks only

    restarted = batchline("restart", str(stopped_id), "--job", COUNT, env=cli_env(sqlite_url))
    assert restarted.returncode == 0, restarted.stderr
    assert sorted(out.items()) == list(range(ITEMS))
    out.bind.dispose()


def test_the_applications_loggers_reach_stderr_at_the_cli_level(sqlite_url: str) -> None:
    """A job's own logger is heard on stderr at INFO like batchline's (DEBUG with -v, nothing
    with -q, JSON lines with --log-format json), while SQLAlchemy's statements stay quiet."""
    job = "tests.jobs.cli_jobs:chatty_job"
    env = cli_env(sqlite_url)
    plain = batchline("start", job, "run=1", env=env)
    assert plain.returncode == 0, plain.stderr
    assert "hello from the application" in plain.stderr
    assert "details only -v shows" not in plain.stderr
    assert "SELECT" not in plain.stderr and "INSERT" not in plain.stderr
    verbose = batchline("-v", "start", job, "run=2", env=env)
    assert "details only -v shows" in verbose.stderr
    quiet = batchline("-q", "start", job, "run=3", env=env)
    assert quiet.returncode == 0 and "hello" not in quiet.stderr
    as_json = batchline("--log-format", "json", "start", job, "run=4", env=env)
    lines = [json.loads(line) for line in as_json.stderr.splitlines() if line.startswith("{")]
    (hello,) = [line for line in lines if line["message"] == "hello from the application"]
    assert hello["logger"] == "cli_jobs.app" and hello["job_execution_id"] is not None


class TestBadInput:
    @pytest.mark.parametrize(
        ("args", "code", "fragment"),
        [
            (("start", "tests.jobs.cli_jobs:no_such_job"), EXIT_USAGE, "no attribute"),
            (("start", COUNT, "count:int=lots"), EXIT_USAGE, "not an integer"),
            (("start", "tests.jobs.cli_jobs:dated_job"), EXIT_USAGE, "missing required"),
            (
                ("-r", "postgresql://postgres@127.0.0.1:1/none", "executions"),
                EXIT_UNREACHABLE,
                "cannot reach",
            ),
            (("-r", "mysql://root@127.0.0.1:1/none", "list-jobs"), EXIT_UNREACHABLE, "cannot"),
        ],
    )
    def test_one_line_and_an_exit_code(
        self, args: tuple[str, ...], code: int, fragment: str, sqlite_url: str
    ) -> None:
        """Unknown job, bad type, missing parameter, unreachable database: one line, no trace."""
        result = batchline(*args, env=cli_env(sqlite_url))
        assert result.returncode == code, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], result.stderr
        assert "Traceback" not in result.stderr

    def test_the_installed_script(self, sqlite_url: str) -> None:
        """The `batchline` console script runs the same CLI."""
        script = Path(sys.executable).parent / "batchline"
        if not script.exists():
            pytest.skip("the batchline script is not installed (pip install -e .)")
        result = subprocess.run(
            [str(script), "start", "unknown_job"],
            cwd=ROOT,
            env=cli_env(sqlite_url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == EXIT_USAGE
        assert result.stderr.startswith("batchline: error: unknown job 'unknown_job'")
