"""The command line's operator actions in the audit, beside the web's: who ran them
(``cli:<os user>@<host>``), what on, and done or refused with the reason."""

from __future__ import annotations

import getpass
import socket

from click.testing import CliRunner

from batchline import Engine
from batchline.cli import main
from batchline.repository.audit import AuditEntry, AuditLog
from tests.jobs import cli_jobs

JOBS = "tests.jobs.cli_jobs"
ACTOR = f"cli:{getpass.getuser()}@{socket.gethostname()}"


def entries(url: str) -> list[AuditEntry]:
    with Engine(url) as engine:
        bind = engine.repository.engine  # type: ignore[attr-defined]
        return list(reversed(AuditLog(bind).page(limit=100).items))


def test_cli_actions_are_audited_with_the_os_user_and_host(sqlite_url: str) -> None:
    """start, restart, stop, abandon, recover, backfill and a refused schedule are each one
    row named ``cli:user@host``, done or refused with the reason, oldest first."""
    cli_jobs.create_output(sqlite_url)
    runner = CliRunner()

    def run(*args: str) -> int:
        result = runner.invoke(main, ["-r", sqlite_url, "--jobs", JOBS, "--no-progress", *args])
        return result.exit_code

    assert run("start", "cli_count", "count:int=3") == 0
    assert run("stop", "1") != 0  # it has ended: refused
    assert run("start", "cli_failing") == 1
    assert run("restart", "2") == 1
    assert run("abandon", "3") == 0
    assert run("recover") == 0
    assert run("backfill", "cli_dated", "--range", "date:date=2026-11-01..2026-11-02") == 0
    assert run("schedule", "cli_count", "not a cron") != 0

    seen = [
        (e.token_name, e.action, e.target, e.job_execution_id, e.outcome)
        for e in entries(sqlite_url)
    ]
    assert seen == [
        (ACTOR, "start", "job cli_count", 1, "done"),
        (ACTOR, "stop", "execution 1", 1, "refused"),
        (ACTOR, "start", "job cli_failing", 2, "done"),
        (ACTOR, "restart", "execution 2", 2, "done"),
        (ACTOR, "abandon", "execution 3", 3, "done"),
        (ACTOR, "recover", "dead executions", None, "done"),
        (ACTOR, "backfill", "job cli_dated", None, "done"),
        (ACTOR, "schedule", "job cli_count", None, "refused"),
    ]
    details = [e.detail for e in entries(sqlite_url)]
    assert details[0] == "execution 1"
    assert details[1].startswith("job execution 1 is not running (COMPLETED)")
    assert details[3] == "new execution 3"
    assert details[5] == "none was dead"
    assert details[6].startswith("backfill 1 over date:date=2026-11-01..2026-11-02")
    assert details[7].startswith("cron expression 'not a cron': expected 5 fields")
    with Engine(sqlite_url) as engine:
        assert [b.started_by for b in engine.backfills()] == [ACTOR]


def test_purge_and_tokens_are_audited_never_the_secret(sqlite_url: str) -> None:
    """Deleting history and deciding who may use the console are operator actions: a purge is
    one row with what it deleted (a dry run none), a token's creation and revocation one row
    each, a refused one with its reason; the token itself appears in no row."""
    cli_jobs.create_output(sqlite_url)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, ["-r", sqlite_url, "--jobs", JOBS, "--no-progress", *args])
        assert result.exit_code == 0, result.output
        return result.output

    run("start", "cli_count", "count:int=3")
    secret = run("token", "create", "ops", "--scope", "operate").strip()
    refused = runner.invoke(main, ["-r", sqlite_url, "token", "create", "ops"])
    assert refused.exit_code != 0
    run("token", "revoke", "ops")
    run("purge", "--older-than", "2999-01-01", "--dry-run")
    run("purge", "--older-than", "2999-01-01", "--yes")

    found = entries(sqlite_url)
    seen = [(e.token_name, e.action, e.target, e.outcome) for e in found[1:]]
    assert seen == [
        (ACTOR, "token-create", "token ops", "done"),
        (ACTOR, "token-create", "token ops", "refused"),
        (ACTOR, "token-revoke", "token ops", "done"),
        (ACTOR, "purge", "executions before 2999-01-01 00:00:00 UTC", "done"),
    ]
    assert found[1].detail == "scope operate"
    assert found[2].detail == "a token named 'ops' exists already"
    assert "1 batch_job_execution" in found[4].detail, found[4].detail
    assert all(secret not in f"{e.target} {e.detail}" for e in found)
