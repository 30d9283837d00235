"""Cron schedules: the fire time names the instance, so replicas run each occurrence once."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger
from click.testing import CliRunner

from batchline import (
    BatchStatus,
    ConfigurationError,
    Engine,
    JobBuilder,
    ParameterError,
    StepBuilder,
)
from batchline.cli import main
from batchline.job import Job
from batchline.testing import eventually
from batchline.triggers import JobScheduler, cron_trigger
from tests.backends import fresh_database

ROOT = Path(__file__).resolve().parent.parent


def quick_job() -> Job:
    return JobBuilder("scheduled").step(StepBuilder("s").task(lambda se: None)).build()


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    """One PostgreSQL repository that both replicas share."""
    with fresh_database("postgresql", tmp_path) as url:
        yield url


def occurrences(engine: Engine, job_name: str) -> Counter[dt.datetime]:
    """How many executions each scheduled_at value has."""
    found = engine.list_executions(job_name, limit=1000)
    return Counter(e.parameters["scheduled_at"] for e in found)  # type: ignore[misc]


class TestCronExpressions:
    def test_five_and_six_fields(self) -> None:
        """Five fields are crontab; six put seconds first."""
        start = dt.datetime(2026, 11, 28, 10, 0, 0, tzinfo=dt.UTC)
        assert cron_trigger("30 2 * * *").get_next_fire_time(None, start).hour == 2
        every = cron_trigger("*/15 * * * * *").get_next_fire_time(None, start)
        assert every == start

    @pytest.mark.parametrize("expression", ["* * *", "61 * * * *", "a b c d e"])
    def test_bad_expressions(self, expression: str) -> None:
        """A malformed cron expression is a ConfigurationError that names it."""
        with pytest.raises(ConfigurationError, match="cron expression"):
            cron_trigger(expression)

    def test_cli_bad_cron_is_a_usage_error(self, sqlite_url: str) -> None:
        """`batchline schedule` with a bad cron expression exits 2 with one line."""
        result = CliRunner().invoke(
            main, ["-r", sqlite_url, "schedule", "tests.jobs.cli_jobs:make_job", "* *"]
        )
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1 and "cron expression" in result.stderr

    @pytest.mark.parametrize(
        ("options", "fragment"),
        [
            ({"parameter": "a b"}, "invalid parameter name 'a b'"),
            ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
            ({"misfire_grace_time": -5}, "misfire_grace_time must be a positive number"),
            ({"misfire_grace_time": float("nan")}, "misfire_grace_time must be a positive"),
        ],
    )
    def test_settings_checked_when_built(
        self, sqlite_engine: Engine, options: dict[str, Any], fragment: str
    ) -> None:
        """A parameter name no parameter may have, an unknown time zone or a grace time that
        is not a positive number: refused when the scheduler is built, not at each
        occurrence."""
        with pytest.raises((ConfigurationError, ParameterError), match=fragment):
            JobScheduler(sqlite_engine, **options)

    def test_fractional_grace_time_runs(self, sqlite_engine: Engine) -> None:
        """A grace time under a second is taken (APScheduler truncates to whole seconds, and
        refuses 0)."""
        job = JobBuilder("graceful").step(StepBuilder("s").task(lambda se: None)).build()
        scheduler = JobScheduler(sqlite_engine, misfire_grace_time=0.5)
        scheduler.add(job, "* * * * * *")
        scheduler.start()
        try:
            eventually(lambda: bool(sqlite_engine.list_executions("graceful")), timeout=30)
        finally:
            scheduler.shutdown()


class TestReplicas:
    def test_same_occurrence_fired_by_two_schedulers_runs_once(self, postgres_url: str) -> None:
        """Two schedulers (two engines) fire the same occurrences at the same instant: each
        occurrence gets exactly one execution, the other replica's fire returns None."""
        with (
            Engine(postgres_url, heartbeat_interval=0.5, lease=5) as a,
            Engine(postgres_url, heartbeat_interval=0.5, lease=5) as b,
        ):
            job = quick_job()
            replicas = [JobScheduler(a), JobScheduler(b)]
            base = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
            launched = 0
            with ThreadPoolExecutor(2) as pool:
                for minute in range(8):
                    when = base + dt.timedelta(minutes=minute)
                    gate = threading.Barrier(2)

                    def fire(
                        s: JobScheduler, when: dt.datetime = when, gate: threading.Barrier = gate
                    ) -> bool:
                        gate.wait()
                        handle = s.fire(job, when)
                        return handle is not None and handle.wait(30) is not None

                    results = list(pool.map(fire, replicas))
                    assert results.count(True) == 1, results
                    launched += 1
            counts = occurrences(a, job.name)
            assert len(counts) == launched == 8
            assert set(counts.values()) == {1}
            assert all(e.status is BatchStatus.COMPLETED for e in a.list_executions(job.name))

    def test_two_running_schedulers_every_second(self, postgres_url: str) -> None:
        """Two started schedulers on a per-second cron: one execution per occurrence."""
        with (
            Engine(postgres_url, heartbeat_interval=0.5, lease=5) as a,
            Engine(postgres_url, heartbeat_interval=0.5, lease=5) as b,
        ):
            job = quick_job()
            replicas = [JobScheduler(engine, misfire_grace_time=10) for engine in (a, b)]
            for scheduler in replicas:
                scheduler.add(job, "* * * * * *")
                scheduler.start()
            try:
                eventually(
                    lambda: len(occurrences(a, job.name)) >= 3,
                    timeout=60,
                    interval=0.1,
                    message="fewer than three occurrences ran",
                )
            finally:
                for scheduler in replicas:
                    scheduler.shutdown()
            for handle in replicas[0].running() + replicas[1].running():
                handle.wait(30)
            counts = occurrences(a, job.name)
            assert set(counts.values()) == {1}, counts
            assert all(when.microsecond == 0 for when in counts)


class TestMissedOccurrences:
    def test_catch_up_runs_the_latest_occurrence_within_grace(self, sqlite_url: str) -> None:
        """Started a few seconds after an occurrence, a scheduler still runs it (catch_up)."""
        past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=3)).replace(microsecond=0)
        trigger = CronTrigger(
            hour=past.hour, minute=past.minute, second=past.second, timezone=dt.UTC
        )
        with Engine(sqlite_url) as engine:
            scheduler = JobScheduler(engine, misfire_grace_time=60)
            job = quick_job()
            scheduler.add(job, trigger)
            scheduler.start()
            try:
                eventually(
                    lambda: occurrences(engine, job.name),
                    timeout=60,
                    interval=0.1,
                    message="the missed occurrence was not caught up",
                )
            finally:
                scheduler.shutdown()
            assert list(occurrences(engine, job.name)) == [past]

    @pytest.mark.parametrize(("grace", "catch_up"), [(60.0, False), (1.0, True)])
    def test_no_catch_up_or_too_late(self, sqlite_url: str, grace: float, catch_up: bool) -> None:
        """Without catch_up, or later than the grace time, the next occurrence is tomorrow's."""
        now = dt.datetime.now(dt.UTC)
        past = (now - dt.timedelta(seconds=5)).replace(microsecond=0)
        trigger = CronTrigger(
            hour=past.hour, minute=past.minute, second=past.second, timezone=dt.UTC
        )
        with Engine(sqlite_url) as engine:
            scheduler = JobScheduler(engine, misfire_grace_time=grace, catch_up=catch_up)
            scheduler.add(quick_job(), trigger)
            scheduler.start()
            try:
                [(_, upcoming)] = scheduler.next_fire_times().items()
            finally:
                scheduler.shutdown()
            assert upcoming is not None and upcoming > now + dt.timedelta(hours=23)

    def test_an_existing_occurrence_is_not_launched_again(self, sqlite_url: str) -> None:
        """A failed occurrence is not relaunched by a scheduler: that is an operator's restart."""

        def boom(_: object) -> None:
            raise RuntimeError("failed occurrence")

        job = JobBuilder("flaky").step(StepBuilder("s").task(boom)).build()
        when = dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC)
        with Engine(sqlite_url) as engine:
            scheduler = JobScheduler(engine)
            first = scheduler.fire(job, when)
            assert first is not None and first.wait(30).status is BatchStatus.FAILED
            assert scheduler.fire(job, when) is None
            assert len(engine.list_executions("flaky")) == 1


@pytest.mark.slow
def test_two_cli_schedulers_against_one_postgres(postgres_url: str) -> None:
    """Two `batchline schedule` processes on one repository, a per-second cron: every
    occurrence runs exactly once; SIGTERM shuts both down with exit 0."""
    env = dict(
        os.environ,
        BATCHLINE_REPOSITORY=postgres_url,
        BATCHLINE_HEARTBEAT_INTERVAL="0.5",
        BATCHLINE_LEASE="5",
    )
    args = ["schedule", "tests.jobs.cli_jobs:make_job", "* * * * * *", "--misfire-grace-time=10"]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "batchline", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]

    def three_occurrences() -> bool:
        dead = [child.returncode for child in children if child.poll() is not None]
        assert not dead, f"a scheduler exited early: {[c.communicate() for c in children]}"
        return len(occurrences(engine, "cli_made")) >= 3

    with Engine(postgres_url) as engine:
        try:
            eventually(
                three_occurrences,
                timeout=60,
                interval=0.1,
                message="fewer than three occurrences ran",
            )
        finally:
            for child in children:
                child.send_signal(signal.SIGTERM)
            outputs = [child.communicate(timeout=60) for child in children]
        assert [child.returncode for child in children] == [0, 0], outputs
        counts = occurrences(engine, "cli_made")
        assert set(counts.values()) == {1}, counts
        skipped = sum(err.count("already launched") + err.count("elsewhere") for _, err in outputs)
        assert skipped >= 1, "the replicas never competed for an occurrence"


class TestOverlap:
    @pytest.mark.parametrize("overlap", [False, True])
    def test_an_occurrence_waits_for_no_earlier_one_unless_told(
        self, sqlite_url: str, overlap: bool
    ) -> None:
        """overlap=False: while an occurrence's execution runs, the next occurrences are
        skipped (and the one after it ends runs); overlap=True (the default) runs them side by
        side."""
        release = threading.Event()
        job = (
            JobBuilder("long_nightly")
            .step(StepBuilder("s").task(lambda se: release.wait(60) and None))
            .build()
        )
        with Engine(sqlite_url, heartbeat_interval=0.5, lease=5) as engine:
            scheduler = JobScheduler(engine, misfire_grace_time=10)
            scheduler.add(job, "* * * * * *", {"region": "eu"}, overlap=overlap)
            scheduler.start()
            try:
                eventually(
                    lambda: engine.running_executions("long_nightly"),
                    timeout=30,
                    message="the first occurrence never started",
                )
                first = engine.running_executions("long_nightly")[0].id
                later = threading.Event()
                later.wait(3.5)  # three more occurrences fire meanwhile
                running = engine.running_executions("long_nightly")
                if overlap:
                    assert len(running) >= 2
                else:
                    assert [e.id for e in running] == [first]
                    assert len(engine.list_executions("long_nightly", limit=100)) == 1
                release.set()
                eventually(
                    lambda: (
                        len(engine.list_executions("long_nightly", limit=100)) >= 2
                        and not engine.running_executions("long_nightly")
                    ),
                    timeout=30,
                    message="no occurrence ran after the first ended",
                )
            finally:
                release.set()
                scheduler.shutdown()
                for handle in scheduler.running():
                    handle.wait(30)
            statuses = {e.status for e in engine.list_executions("long_nightly", limit=100)}
            assert statuses == {BatchStatus.COMPLETED}
