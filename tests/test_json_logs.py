"""JSON log lines: each parses and carries the job, step, execution and partition ids."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from batchline import BatchStatus, Engine, JsonFormatter, get_logger, json_logging
from tests.jobs import obs_jobs

ROOT = Path(__file__).resolve().parent.parent


def parsed(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object


class TestJsonLogging:
    def test_partition_lines_carry_every_id(self, sqlite_url: str) -> None:
        """Lines logged in partitions name the job, its execution, the partitioned step, the
        partition and its step execution; the text prefix stays out of the message."""
        stream = io.StringIO()
        restore = json_logging(stream)
        try:
            with Engine(sqlite_url) as engine:
                execution = engine.start(obs_jobs.THREAD_JOB)
                steps = {s.step_name: s.id for s in engine.step_executions(execution.id)}
        finally:
            restore()
        assert execution.status is BatchStatus.COMPLETED
        lines = parsed(stream.getvalue())
        started = [line for line in lines if line["message"].startswith("step work:0")]
        assert {line["partition"] for line in started} == {f"work:{i:04d}" for i in range(4)}
        for line in started:
            assert line["job"] == "obs_threads"
            assert line["job_execution_id"] == execution.id
            assert line["step"] == "work"
            assert line["step_execution_id"] == steps[line["partition"]]
        manager = next(line for line in lines if line["message"].startswith("step work started"))
        assert manager["partition"] is None
        assert manager["step_execution_id"] == steps["work"]
        job = next(line for line in lines if line["message"].startswith("job obs_threads started"))
        assert job["step"] is None and job["job_execution_id"] == execution.id
        assert all(line["level"] and line["time"] and line["logger"] for line in lines)

    def test_a_percent_sign_in_a_name_is_text(self, sqlite_url: str) -> None:
        """A job and a step named with % signs: every line formats (no logging error) and shows
        the names as they are, in the text prefix and in the JSON fields."""
        from batchline import JobBuilder, StepBuilder

        text, js = io.StringIO(), io.StringIO()
        handler = logging.StreamHandler(text)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger("batchline")
        logger.addHandler(handler)
        restore = json_logging(js)
        try:
            job = (
                JobBuilder("50%s done")
                .step(StepBuilder("s%d").chunk(2).reader([1, 2, 3]).writer(lambda items: None))
                .build()
            )
            with Engine(sqlite_url) as engine:
                assert engine.start(job).status is BatchStatus.COMPLETED
        finally:
            restore()
            logger.removeHandler(handler)
        lines = text.getvalue().splitlines()
        assert "[50%s done#1] job 50%s done COMPLETED" in lines
        assert "[50%s done#1 s%d#1] step s%d started" in lines
        records = parsed(js.getvalue())
        assert {r["job"] for r in records} == {"50%s done"}
        assert any(r["message"] == "job 50%s done COMPLETED" for r in records)

    def test_restore_removes_the_handler(self) -> None:
        """What json_logging returns leaves the logger as it found it."""
        logger = logging.getLogger("batchline")
        before = (list(logger.handlers), logger.level, logger.propagate)
        json_logging(io.StringIO())()
        assert (list(logger.handlers), logger.level, logger.propagate) == before

    def test_data_reaches_the_line_escaped(self) -> None:
        """A control character from data (ESC, C1 CSI) is escaped; the line stays one line."""
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
        logger = logging.getLogger("batchline.test_json")
        logger.addHandler(handler)
        try:
            get_logger("batchline.test_json").warning("bad %s", "\x1b[2J\x9b\nnext")
        finally:
            logger.removeHandler(handler)
        text = stream.getvalue()
        assert "\x1b" not in text and "\x9b" not in text
        (line,) = parsed(text)
        assert line["message"] == "bad \x1b[2J\x9b\nnext"
        assert line["job"] is None and line["level"] == "WARNING"


@pytest.mark.slow
class TestCli:
    def test_log_format_json(self, sqlite_url: str) -> None:
        """``batchline --log-format json start``: every stderr line parses and carries ids."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "batchline",
                "-r",
                sqlite_url,
                "--log-format",
                "json",
                "start",
                "tests.jobs.obs_jobs:THREAD_JOB",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        lines = parsed(done.stderr)
        job = next(line for line in lines if line["message"].startswith("job obs_threads started"))
        assert isinstance(job["job_execution_id"], int)
        partitions = {line["partition"] for line in lines if line["partition"]}
        assert partitions == {f"work:{i:04d}" for i in range(4)}
