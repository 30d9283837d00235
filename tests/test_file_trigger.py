"""Files arriving in a folder start a job: once per file, however many watchers poll."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsspec
import pytest
from click.testing import CliRunner

from batchline import (
    BatchStatus,
    ConfigurationError,
    Engine,
    JobBuilder,
    LaunchRefused,
    ParameterError,
    StepBuilder,
)
from batchline.cli import main
from batchline.testing import eventually
from batchline.triggers import FolderWatcher
from tests.backends import fresh_database
from tests.jobs.cli_jobs import file_job

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


@pytest.fixture
def inbox() -> Iterator[str]:
    """An empty folder on fsspec's in-memory filesystem."""
    url = f"memory://inbox-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    fs.mkdir(url)
    yield url
    fs.rm(url, recursive=True)


def drop(url: str, name: str, lines: int = 3) -> str:
    path = f"{url}/{name}"
    with fsspec.open(path, "wt") as handle:
        handle.write("row\n" * lines)
    return path


def files_run(engine: Engine) -> list[str]:
    return sorted(str(e.parameters["file"]) for e in engine.list_executions("cli_file"))


class TestWatcher:
    @pytest.mark.parametrize(
        ("options", "fragment"),
        [
            ({"parameter": "a b"}, "invalid parameter name 'a b'"),
            ({"interval": 0}, "poll interval must be a positive number"),
            ({"interval": float("nan")}, "poll interval must be a positive number"),
        ],
    )
    def test_settings_checked_when_built(
        self, sqlite_url: str, inbox: str, options: dict[str, Any], fragment: str
    ) -> None:
        """A bad parameter name or poll interval is refused when the watcher is built,
        not at each file."""
        with (
            Engine(sqlite_url) as engine,
            pytest.raises((ConfigurationError, ParameterError), match=fragment),
        ):
            FolderWatcher(engine, file_job, inbox, **options)

    def test_a_file_launches_once_with_its_url(self, sqlite_url: str, inbox: str) -> None:
        """A new file starts one execution with its URL; later polls start nothing more."""
        with Engine(sqlite_url) as engine:
            watcher = FolderWatcher(engine, file_job, inbox, pattern="*.csv")
            drop(inbox, "a.csv", lines=4)
            drop(inbox, "ignored.txt")
            assert watcher.poll() == []  # first sight: waits for the size to settle
            [handle] = watcher.poll()
            execution = handle.wait(30)
            assert execution.status is BatchStatus.COMPLETED
            assert str(execution.parameters["file"]).endswith("/a.csv")
            assert execution.parameters.parameter("file").identifying
            assert engine.step_executions(execution.id)[0].context["lines"] == 4
            assert watcher.poll() == [] and watcher.poll() == []

    def test_a_failed_file_is_not_relaunched(self, sqlite_url: str, inbox: str) -> None:
        """A file whose run failed stays failed until an operator restarts it."""
        with Engine(sqlite_url) as engine:
            watcher = FolderWatcher(engine, file_job, inbox, require_stable=False)
            path = drop(inbox, "b.csv")
            fsspec.filesystem("memory").rm(path)
            fsspec.filesystem("memory").mkdir(path)  # a folder where a file was: open fails
            assert watcher.poll() == []
            drop(inbox, "c.csv")
            [handle] = watcher.poll()
            assert handle.wait(30).status is BatchStatus.COMPLETED
            other = FolderWatcher(engine, file_job, inbox, require_stable=False)
            assert other.poll() == []  # a new watcher knows c.csv from the repository

    def test_two_watchers_polling_together(self, postgres_url: str, inbox: str) -> None:
        """Two watchers (two engines, one PostgreSQL repository) poll the same files at the
        same instant, again and again: each file gets exactly one execution."""
        with (
            Engine(postgres_url, heartbeat_interval=0.5, lease=5) as a,
            Engine(postgres_url, heartbeat_interval=0.5, lease=5) as b,
        ):
            watchers = [FolderWatcher(e, file_job, inbox, require_stable=False) for e in (a, b)]
            names = [f"f{i}.csv" for i in range(6)]
            with ThreadPoolExecutor(2) as pool:
                for name in names:
                    drop(inbox, name)
                    gate = threading.Barrier(2)

                    def poll(w: FolderWatcher, gate: threading.Barrier = gate) -> int:
                        gate.wait()
                        return len([h.wait(30) for h in w.poll()])

                    assert sorted(pool.map(poll, watchers)) == [0, 1]
            runs = files_run(a)
            assert len(runs) == len(set(runs)) == len(names)

    def test_two_running_watchers(self, postgres_url: str, inbox: str) -> None:
        """Two started watchers polling every 20 ms: five files, five executions."""
        with (
            Engine(postgres_url, heartbeat_interval=0.5, lease=5) as a,
            Engine(postgres_url, heartbeat_interval=0.5, lease=5) as b,
        ):
            watchers = [FolderWatcher(e, file_job, inbox, interval=0.02) for e in (a, b)]
            for watcher in watchers:
                watcher.start()
            try:
                for i in range(5):
                    drop(inbox, f"g{i}.csv")
                eventually(
                    lambda: len(files_run(a)) >= 5, timeout=60, message="five files, fewer runs"
                )
                for watcher in watchers:  # a few more polls after the last launch
                    polls = [watcher.poll() for _ in range(3)]
                    assert polls == [[], [], []]
            finally:
                for watcher in watchers:
                    watcher.stop()
            runs = files_run(a)
            assert len(runs) == len(set(runs)) == 5


class TestStartAsync:
    def test_from_many_threads(self, engine: Engine) -> None:
        """start_async from eight threads at once: one launch per instance, the rest refused."""
        job = JobBuilder("event").step(StepBuilder("s").task(lambda se: None)).build()
        gate = threading.Barrier(8)

        def launch(n: int) -> str:
            gate.wait()
            try:
                handle = engine.start_async(job, {"event": n % 2})
            except LaunchRefused:
                return "refused"
            return handle.wait(30).status.value

        with ThreadPoolExecutor(8) as pool:
            outcomes = sorted(pool.map(launch, range(8)))
        assert outcomes == ["COMPLETED"] * 2 + ["refused"] * 6
        assert len(engine.list_executions("event")) == 2


class TestWatchCommand:
    def test_once(self, sqlite_url: str, tmp_path: Path) -> None:
        """`watch --once` launches one execution per file and exits with the outcome."""
        folder = tmp_path / "in"
        folder.mkdir()
        (folder / "x.csv").write_text("1\n2\n")
        args = ["-r", sqlite_url, "watch", "tests.jobs.cli_jobs:file_job", str(folder), "--once"]
        first = CliRunner().invoke(main, args)
        assert first.exit_code == 0, first.output
        assert "1 execution(s) launched" in first.stdout
        again = CliRunner().invoke(main, args)
        assert "0 execution(s) launched" in again.stdout


@pytest.mark.slow
def test_two_cli_watchers_one_file(postgres_url: str, tmp_path: Path) -> None:
    """Two `batchline watch` processes on one folder and repository: a dropped file starts
    exactly one execution (the other watcher finds it launched); SIGTERM ends both, exit 0."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    env = dict(
        os.environ,
        BATCHLINE_REPOSITORY=postgres_url,
        BATCHLINE_HEARTBEAT_INTERVAL="0.5",
        BATCHLINE_LEASE="5",
    )
    argv = [sys.executable, "-m", "batchline", "watch", "tests.jobs.cli_jobs:file_job"]
    argv += [str(folder), "--pattern", "*.csv", "--interval", "0.1"]
    logs = [tmp_path / f"watcher{i}.log" for i in range(2)]
    children = []
    for log in logs:
        with log.open("w") as err:
            children.append(
                subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
            )

    def text() -> str:
        return "".join(log.read_text() for log in logs)

    try:
        eventually(lambda: text().count("watching") == 2, timeout=60, message="a watcher missing")
        staged = tmp_path / "staged.csv"
        staged.write_text("a\nb\nc\n")
        staged.rename(folder / "trades.csv")  # arrives whole
        eventually(lambda: "arrived; execution" in text(), timeout=60, message="no launch")
        eventually(
            lambda: "already launched" in text() or "elsewhere" in text(),
            timeout=60,
            message="the other watcher never saw the file",
        )
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        codes = [child.wait(timeout=60) for child in children]
    assert codes == [0, 0], text()
    assert text().count("arrived; execution") == 1
    with Engine(postgres_url) as engine:
        [execution] = engine.list_executions("cli_file")
        assert execution.status is BatchStatus.COMPLETED
        assert str(execution.parameters["file"]).endswith("/inbox/trades.csv")
