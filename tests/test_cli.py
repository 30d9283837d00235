"""The CLI in process (Click's CliRunner): parsing, tables, one-line errors and exit codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batchline import BatchStatus, Engine, JobParameters
from batchline.cli import main
from batchline.cli.output import (
    EXIT_COMPLETED,
    EXIT_FAILED,
    EXIT_REFUSED,
    EXIT_STOPPED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    exit_code_for,
)
from tests.jobs import cli_jobs

JOBS = "tests.jobs.cli_jobs"
COUNT = f"{JOBS}:count_job"

Invoke = Callable[..., Result]


@pytest.fixture
def cli(sqlite_url: str) -> Invoke:
    """Run ``batchline`` in process against a fresh SQLite repository."""
    cli_jobs.create_output(sqlite_url)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, ["--repository", sqlite_url, "--no-progress", *args])

    return invoke


def assert_one_line_error(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("batchline: error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


class TestHelp:
    def test_help_lists_exit_codes(self) -> None:
        """`batchline --help` documents every exit code."""
        result = CliRunner().invoke(main, ["--help"])
        assert result.exit_code == 0
        for line in ("0  completed", "1  failed", "2  usage", "3  stopped", "4  launch refused"):
            assert line in result.output
        assert "5  job repository unreachable" in result.output

    def test_exit_codes_follow_status(self) -> None:
        """Completed, failed and stopped each map to their own code."""
        assert exit_code_for(BatchStatus.COMPLETED) == EXIT_COMPLETED
        assert exit_code_for(BatchStatus.FAILED) == EXIT_FAILED
        assert exit_code_for(BatchStatus.STOPPED) == EXIT_STOPPED
        assert len({EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED, EXIT_REFUSED}) == 5


class TestStart:
    def test_start_completes_and_prints_tables(self, cli: Invoke) -> None:
        """A started job runs to the end; the output shows its status and step counters."""
        result = cli("start", COUNT, "count:int=25", "-n", "note=hello")
        assert result.exit_code == 0, result.output
        assert "COMPLETED" in result.stdout
        assert "count:int=25" in result.stdout
        assert "note:str=hello (non-identifying)" in result.stdout
        assert "25" in result.stdout

    def test_same_instance_twice_is_refused(self, cli: Invoke) -> None:
        """Starting a completed instance again exits 4 with one line."""
        assert cli("start", COUNT, "count:int=5").exit_code == 0
        result = cli("start", COUNT, "count:int=5", "-n", "other=1")
        assert_one_line_error(result, EXIT_REFUSED, "completed")

    def test_factory_reference(self, cli: Invoke) -> None:
        """module:attribute may name a callable that returns the Job."""
        result = cli("start", f"{JOBS}:make_job")
        assert result.exit_code == 0, result.output
        assert "cli_made" in result.stdout

    def test_failing_job_exits_1(self, cli: Invoke) -> None:
        """A FAILED job exits 1 and says why in one line on stderr, without a traceback."""
        result = cli("start", f"{JOBS}:failing_job")
        assert result.exit_code == EXIT_FAILED
        assert "the task exploded" in result.stderr
        assert "Traceback" not in result.stdout

    def test_job_by_name_from_jobs_module(self, sqlite_url: str) -> None:
        """--jobs registers a module's jobs so they can be started by name."""
        result = CliRunner().invoke(
            main, ["-r", sqlite_url, "--jobs", JOBS, "start", "cli_dated", "date:date=2026-11-28"]
        )
        assert result.exit_code == 0, result.output


class TestBadInput:
    @pytest.mark.parametrize(
        ("args", "fragment"),
        [
            ((f"{JOBS}:nope",), "no attribute 'nope'"),
            (("no_such_module.jobs:job",), "cannot import"),
            (("cli_count",), "unknown job 'cli_count'"),
            ((f"{JOBS}:not_a_job",), "neither a Job (or a list of Jobs) nor a callable"),
            ((COUNT, "count:int=many"), "not an integer"),
            ((COUNT, "count:integer=3"), "unknown type"),
            ((COUNT, "count"), "expected name[:type]=value"),
            ((f"{JOBS}:dated_job",), "missing required parameter(s) date"),
            ((f"{JOBS}:dated_job", "date=2026-11-28"), "date must be of type date"),
        ],
    )
    def test_usage_errors(self, cli: Invoke, args: tuple[str, ...], fragment: str) -> None:
        """Unknown jobs and bad or missing parameters: one line on stderr, exit 2."""
        assert_one_line_error(cli("start", *args), EXIT_USAGE, fragment)

    def test_unreachable_database(self) -> None:
        """A repository that refuses connections: one line, exit 5."""
        url = "postgresql://postgres@127.0.0.1:1/none"
        result = CliRunner().invoke(main, ["-r", url, "start", f"{JOBS}:make_job"])
        assert_one_line_error(result, EXIT_UNREACHABLE, "cannot reach")

    def test_unknown_execution(self, cli: Invoke) -> None:
        """An execution id the repository does not hold is a usage error."""
        assert_one_line_error(cli("show", "999"), EXIT_USAGE, "999")

    def test_lease_shorter_than_heartbeat(self, sqlite_url: str) -> None:
        """--lease must be longer than --heartbeat-interval."""
        args = ["-r", sqlite_url, "--heartbeat-interval", "5", "--lease", "2", "list-jobs"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == EXIT_USAGE
        assert "lease" in result.stderr


class TestOperate:
    def test_restart_abandon_and_refusals(self, cli: Invoke) -> None:
        """A failed run restarts (and fails again); once abandoned, a restart is refused."""
        assert cli("start", f"{JOBS}:failing_job").exit_code == EXIT_FAILED
        again = cli("restart", "1", "--job", f"{JOBS}:failing_job")
        assert again.exit_code == EXIT_FAILED, again.output
        assert cli("abandon", "2").exit_code == 0
        refused = cli("restart", "2", "--job", f"{JOBS}:failing_job")
        assert_one_line_error(refused, EXIT_REFUSED, "abandoned")
        nothing = cli("restart", f"{JOBS}:failing_job")
        assert_one_line_error(nothing, EXIT_USAGE, "no failed or stopped execution")

    def test_restart_needs_the_job(self, cli: Invoke) -> None:
        """Restarting by id without the job's module loaded says how to load it."""
        assert cli("start", f"{JOBS}:failing_job").exit_code == EXIT_FAILED
        assert_one_line_error(cli("restart", "1"), EXIT_USAGE, "--jobs")

    def test_stop_a_finished_execution_is_refused(self, cli: Invoke) -> None:
        """Only a running execution can be stopped."""
        assert cli("start", COUNT, "count:int=3").exit_code == 0
        assert_one_line_error(cli("stop", "1"), EXIT_REFUSED, "not running")

    def test_recover_with_nothing_dead(self, cli: Invoke) -> None:
        """recover without an id reports that no execution is dead."""
        result = cli("recover")
        assert result.exit_code == 0
        assert "no dead executions" in result.stdout

    def test_recover_names_the_executions_that_are_alive(
        self, cli: Invoke, sqlite_url: str
    ) -> None:
        """recover with nothing dead but a job running says which executions hold their lease,
        rather than only that none is dead."""
        with Engine(sqlite_url) as engine:
            running = engine.repository.create_job_execution("nightly", JobParameters())
            running.set_status(BatchStatus.STARTED)
            engine.repository.update_job_execution(running)
            engine.repository.heartbeat([running.id])
        result = cli("recover")
        assert result.exit_code == 0, result.output
        assert (
            f"no dead executions; running with a live lease: {running.id} (nightly, STARTED)"
            in result.stdout
        )


class TestInspect:
    def test_executions_show_and_show_step(self, cli: Invoke) -> None:
        """executions lists runs; show and show-step print counters as tables."""
        cli("start", COUNT, "count:int=30")
        cli("start", f"{JOBS}:failing_job")
        listing = cli("executions")
        assert listing.exit_code == 0
        assert "cli_count" in listing.stdout and "cli_failing" in listing.stdout
        failed = cli("executions", "--status", "failed")
        assert "cli_failing" in failed.stdout and "cli_count" not in failed.stdout
        shown = cli("show", "1")
        assert shown.exit_code == 0
        assert "Step executions" in shown.stdout and "30" in shown.stdout
        step = cli("show-step", "1", "count")
        assert step.exit_code == 0
        assert "reader.count" in step.stdout or "30" in step.stdout
        assert "the task exploded" in cli("show", "2").stdout
        assert_one_line_error(cli("show-step", "1", "nope"), EXIT_USAGE, "nope")

    def test_executions_filters_and_pages(self, cli: Invoke) -> None:
        """executions filters by parameter and time in the repository and pages by id."""
        for count in (5, 6, 7):
            cli("start", COUNT, f"count:int={count}")
        one = cli("executions", "--param", "count:int=6")
        assert one.exit_code == 0 and "count:int=6" in one.stdout
        assert "count:int=5" not in one.stdout and "count:int=7" not in one.stdout
        page = cli("executions", "--limit", "2")
        assert "next page: --after 2" in page.stdout and "count:int=5" not in page.stdout
        rest = cli("executions", "--limit", "2", "--after", "2")
        assert "count:int=5" in rest.stdout and "next page" not in rest.stdout
        none = cli("executions", "--until", "2000-01-01", "--status", "completed")
        assert none.exit_code == 0 and "cli_count" not in none.stdout

    def test_executions_by_prefix_message_and_running(self, cli: Invoke) -> None:
        """executions finds jobs by name prefix and failures by exit-message text."""
        cli("start", COUNT, "count:int=3")
        cli("start", f"{JOBS}:failing_job")
        prefixed = cli("executions", "--job-prefix", "cli_f")
        assert "cli_failing" in prefixed.stdout and "cli_count" not in prefixed.stdout
        said = cli("executions", "--message", "TASK EXPLODED")
        assert "cli_failing" in said.stdout and "cli_count" not in said.stdout
        running = cli("executions", "--running")
        assert running.exit_code == 0 and "cli_" not in running.stdout
        assert "cli_count" in cli("executions", "--since", "2000-01-01").stdout
        assert_one_line_error(cli("executions", "--param", "count"), EXIT_USAGE, "count")

    def test_show_lists_skipped_items(self, cli: Invoke) -> None:
        """show prints the skip counters and the skipped items with their errors."""
        assert cli("start", f"{JOBS}:skipping_job").exit_code == 0
        shown = cli("show", "1")
        assert "0/4/0" in shown.stdout  # four process skips: 7, 14, 21, 28
        assert "Skipped items" in shown.stdout
        assert "21 is a multiple of seven" in shown.stdout
        step = cli("show-step", "1", "filter")
        assert "28 is a multiple of seven" in step.stdout

    def test_list_jobs(self, cli: Invoke, sqlite_url: str) -> None:
        """list-jobs shows loaded jobs and jobs the repository has run."""
        cli("start", f"{JOBS}:make_job")
        result = CliRunner().invoke(main, ["-r", sqlite_url, "--jobs", JOBS, "list-jobs"])
        assert result.exit_code == 0, result.output
        for name in ("cli_count", "cli_dated", "cli_failing", "cli_made"):
            assert name in result.stdout


class TestDb:
    def test_db_upgrade(self, tmp_path: Path) -> None:
        """db upgrade creates the schema and prints the revision."""
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        result = CliRunner().invoke(main, ["-r", url, "db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert "revision" in result.stdout

    def test_db_upgrade_prints_the_revision_reached(self, db_url: str) -> None:
        """db upgrade names the revision the repository is at (batchline's version table), on
        every backend: the newest migration, never None."""
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", "batchline.repository:migrations")
        [head] = ScriptDirectory.from_config(config).get_heads()
        for _ in range(2):  # creating the schema, then finding it at head
            result = CliRunner().invoke(main, ["-r", db_url, "db", "upgrade"])
            assert result.exit_code == 0, result.output
            assert result.stdout.rstrip().endswith(f"is at revision {head}"), result.stdout

    def test_db_upgrade_to_a_revision_prints_it(self, tmp_path: Path) -> None:
        """db upgrade --revision 0002 on an empty repository says it is at 0002."""
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        result = CliRunner().invoke(main, ["-r", url, "db", "upgrade", "--revision", "0002"])
        assert result.exit_code == 0, result.output
        assert result.stdout.rstrip().endswith("is at revision 0002"), result.stdout

    def test_purge(self, cli: Invoke, sqlite_url: str) -> None:
        """purge --dry-run counts, purge deletes executions, steps and instances."""
        cli("start", COUNT, "count:int=3")
        dry = cli("purge", "--older-than", "2099-01-01", "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "would delete" in dry.stdout and "batch_job_execution" in dry.stdout
        assert cli("purge", "--older-than", "2099-01-01", "--yes").exit_code == 0
        with Engine(sqlite_url) as engine:
            assert engine.list_executions() == []
        bad = cli("purge", "--older-than", "yesterday", "--yes")
        assert bad.exit_code == EXIT_USAGE
