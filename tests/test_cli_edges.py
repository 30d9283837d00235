"""The CLI's edges: data printed literally, one-line errors with the README's exit codes."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from batchline import Engine, JobBuilder, StepBuilder
from batchline.cli import main
from batchline.cli.output import (
    EXIT_COMPLETED,
    EXIT_FAILED,
    EXIT_STOPPED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from batchline.progress import ProgressReporter
from batchline.testing import eventually
from tests.backends import POSTGRES, fresh_database
from tests.frozen_proxy import proxy_to
from tests.jobs import cli_jobs
from tests.jobs.cliops_jobs import CUT_FLAG, NASTY, NASTY_SHOWN
from tests.test_cli_process import ROOT, Output, cli_env, spawn

COUNT = "tests.jobs.cli_jobs:count_job"
JOBS = "tests.jobs.cliops_jobs"
HUGE = str(2**64)

Invoke = Callable[..., Result]


@pytest.fixture
def cli(sqlite_url: str) -> Invoke:
    cli_jobs.create_output(sqlite_url)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, ["--repository", sqlite_url, "--no-progress", *args])

    return invoke


def assert_literal(text: str) -> None:
    """The nasty value shows escaped, and no control character reached the terminal."""
    assert NASTY_SHOWN in text, text
    assert not any(c in text for c in "\x1b\x07\x08\x9b"), text


def assert_one_line_error(result: Result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("batchline: error: "), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.output


class TestDataPrintedLiterally:
    def test_parameters_with_markup_and_escapes(self, cli: Invoke) -> None:
        """A COMPLETED job with a markup/escape parameter exits 0; executions and show work."""
        started = cli("start", COUNT, f"v={NASTY}")
        assert started.exit_code == EXIT_COMPLETED, started.output
        assert_literal(started.stdout)
        for args in (("executions",), ("show", "1")):
            result = cli(*args)
            assert result.exit_code == 0, result.output
            assert_literal(result.stdout)

    def test_failure_message(self, cli: Invoke) -> None:
        """An exit message with markup and escapes: in the summary, the log, show and show-step."""
        failed = cli("start", f"{JOBS}:markup_fail_job")
        assert failed.exit_code == EXIT_FAILED, failed.output
        assert_literal(failed.stdout)
        assert_literal(failed.stderr)
        for args in (("show", "1"), ("show-step", "1", "explode")):
            result = cli(*args)
            assert result.exit_code == 0, result.output
            assert_literal(result.stdout)

    def test_skipped_items(self, cli: Invoke) -> None:
        """Skipped items holding markup and escapes are listed literally."""
        assert cli("start", f"{JOBS}:markup_skip_job").exit_code == EXIT_COMPLETED
        for args in (("show", "1"), ("show-step", "1", "load")):
            result = cli(*args)
            assert result.exit_code == 0, result.output
            assert_literal(result.stdout)

    def test_progress_display_with_a_markup_step_name(self, sqlite_engine: Engine) -> None:
        """The live display shows a step named like markup and escapes literally."""
        out = io.StringIO()
        console = Console(file=out, force_terminal=True, width=200)
        step = StepBuilder(NASTY).chunk(2).reader([1, 2, 3]).writer(lambda items, _chunk: None)
        job = JobBuilder("named").step(step).build()
        reporter = ProgressReporter(console, live=True)
        reporter.attach(job)
        with reporter:
            sqlite_engine.start(job)
        assert NASTY_SHOWN in out.getvalue()


class TestOneLineErrors:
    @pytest.mark.parametrize(
        ("args", "code", "fragment"),
        [
            (("show", HUGE), EXIT_USAGE, HUGE),
            (("stop", HUGE), EXIT_USAGE, HUGE),
            (("abandon", HUGE), EXIT_USAGE, HUGE),
            (("restart", HUGE, "--job", COUNT), EXIT_USAGE, HUGE),
            (("recover", HUGE), EXIT_USAGE, HUGE),
            (("show-step", HUGE, "s"), EXIT_USAGE, HUGE),
            (("executions", "--limit", HUGE), EXIT_USAGE, HUGE),
            (("purge", "--older-than", "999999999d", "-y"), EXIT_USAGE, "--older-than"),
            (("db", "upgrade", "--revision", "nope"), EXIT_USAGE, "'nope'"),
            (("db", "upgrade", "--revision", ""), EXIT_USAGE, "empty revision"),
            (("watch", COUNT, "nope://x/y", "--once"), EXIT_USAGE, "nope"),
            (("listen", COUNT, "nope://x/y", "--queue", "q"), EXIT_USAGE, "No such transport"),
            (("listen", COUNT, "redis://", "--queue", "q", "-o", "x"), EXIT_USAGE, "NAME=VALUE"),
            (("listen", COUNT, "redis://"), EXIT_USAGE, "Missing option '--queue'"),
            (("start",), EXIT_USAGE, "Missing argument 'JOB'"),
        ],
    )
    def test_bad_input(self, cli: Invoke, args: tuple[str, ...], code: int, fragment: str) -> None:
        """Ids beyond 64 bits, huge ages, unknown revisions or protocols: one line, exit 2."""
        assert_one_line_error(cli(*args), code, fragment)

    @pytest.mark.parametrize(
        ("url", "code", "fragment"),
        [
            ("foo://x/y", EXIT_USAGE, "unknown database 'foo'"),
            ("sqlite:////proc/nope/x.db", EXIT_UNREACHABLE, "/proc/nope"),
        ],
    )
    def test_bad_repository_url(self, url: str, code: int, fragment: str) -> None:
        """An unknown scheme is a usage error; a SQLite file that cannot be made, unreachable."""
        result = CliRunner().invoke(main, ["-r", url, "executions"])
        assert_one_line_error(result, code, fragment)


class TestBadInputRefusedAtStart:
    @pytest.mark.parametrize(
        ("args", "fragment"),
        [
            (("watch", COUNT, "/nonexistent/inbox", "--once"), "no such folder"),
            (("watch", COUNT, ".", "--interval", "0", "--once"), "'--interval'"),
            (("watch", COUNT, ".", "--interval", "nan", "--once"), "'nan'"),
            (("watch", COUNT, ".", "--parameter", "a b", "--once"), "'a b'"),
            (("start", COUNT, "--queue", "q"), "--queue goes with --queue-to"),
            (("start", COUNT, "a:=1"), "no type after ':'"),
            (("start", COUNT, "x:float=nan"), "not a finite number"),
            (("start", COUNT, "x:float=-inf"), "not a finite number"),
            (("--lease", "nan", "executions"), "'--lease'"),
            (("--heartbeat-interval", "inf", "executions"), "'--heartbeat-interval'"),
            (("--statement-timeout", "nan", "executions"), "'--statement-timeout'"),
            (("stop", "1", "--wait", "--timeout", "nan"), "'--timeout'"),
        ],
    )
    def test_one_line_exit_2(self, cli: Invoke, args: tuple[str, ...], fragment: str) -> None:
        """Values that used to be accepted (and then ran locally, polled in a spin, or
        stored NaN) are refused before anything runs: one line, exit 2."""
        assert_one_line_error(cli(*args), EXIT_USAGE, fragment)
        assert cli("executions").stdout.count("COMPLETED") == 0

    @pytest.mark.parametrize(
        ("options", "fragment"),
        [
            (("--parameter", "a b"), "'a b'"),
            (("--timezone", "Mars/Olympus"), "Mars/Olympus"),
            (("--misfire-grace-time", "-5"), "'--misfire-grace-time'"),
            (("--misfire-grace-time", "nan"), "'--misfire-grace-time'"),
        ],
    )
    def test_schedule_refuses_at_start(
        self, sqlite_url: str, options: tuple[str, ...], fragment: str
    ) -> None:
        """schedule refuses a bad parameter name, time zone or grace time when it starts
        (one line, exit 2), instead of a traceback or a failure at every occurrence."""
        result = subprocess.run(
            [sys.executable, "-m", "batchline", "schedule", COUNT, "* * * * *", *options],
            cwd=ROOT,
            env=cli_env(sqlite_url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == EXIT_USAGE, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("batchline: error: "), result.stderr
        assert fragment in lines[0]

    def test_not_a_database(self, tmp_path: Path) -> None:
        """-r sqlite:/// of a file that is not a database: one line naming it, exit 2."""
        path = tmp_path / "notes.db"
        path.write_text("these are my notes, not a database\n" * 100)
        result = CliRunner().invoke(main, ["-r", f"sqlite:///{path}", "executions"])
        assert_one_line_error(result, EXIT_USAGE, "is not an SQLite database")
        assert path.read_text().startswith("these are my notes")

    def test_serve_on_a_busy_port(self, sqlite_url: str) -> None:
        """serve on a port already taken: one line naming the address, exit 2."""
        pytest.importorskip("uvicorn")
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = CliRunner().invoke(main, ["-r", sqlite_url, "serve", "--port", str(port)])
        assert_one_line_error(result, EXIT_USAGE, f"cannot listen on 127.0.0.1:{port}")


@pytest.mark.slow
class TestProcess:
    def test_second_sigterm_exits_3(self, sqlite_url: str) -> None:
        """A second SIGTERM exits at once with exit 3 and one error line, not 143."""
        cli_jobs.create_output(sqlite_url)
        out = Output(sqlite_url)
        child = spawn("start", COUNT, "count:int=400", env=cli_env(sqlite_url, delay=0.2))
        eventually(lambda: len(out.items()) >= 10, timeout=60, message="a committed chunk")
        child.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # two signals at once are delivered as one
        child.send_signal(signal.SIGTERM)
        _stdout, stderr = child.communicate(timeout=60)
        out.bind.dispose()
        assert child.returncode == EXIT_STOPPED, stderr
        errors = [line for line in stderr.splitlines() if line.startswith("batchline: error:")]
        assert len(errors) == 1 and "second SIGTERM" in errors[0], stderr
        assert "Traceback" not in stderr

    def test_repository_gone_before_the_final_status(self, tmp_path: Path) -> None:
        """The repository lost while the final status is recorded: one line, exit 5."""
        with fresh_database("postgresql", tmp_path) as url, proxy_to(POSTGRES) as proxy:
            flag = tmp_path / "cut"
            env = cli_env(proxy.url(url))
            env.update({CUT_FLAG: str(flag), "BATCHLINE_CONNECT_TIMEOUT": "2"})
            child = spawn("start", f"{JOBS}:cut_job", env=env)
            eventually(flag.exists, timeout=60, message="the job's after_job listener")
            proxy.cut()
            flag.unlink()
            _stdout, stderr = child.communicate(timeout=60)
            assert child.returncode == EXIT_UNREACHABLE, stderr
            assert stderr.strip().splitlines()[-1].startswith("batchline: error: "), stderr
            assert "Traceback" not in stderr
