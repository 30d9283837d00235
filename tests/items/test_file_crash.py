"""A file-to-file job killed with SIGKILL at several points and restarted until it completes:
its output file must equal a clean run's byte for byte.

The child (tests/items/file_job.py) kills itself in the middle of reading a chunk, after half a
chunk is flushed to the output, after the chunk is flushed but before its commit, and right
after a commit; one more run is killed by the parent after a random delay. Rerun a failure with
BATCHLINE_CRASH_SEED=<seed>.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from batchline import BatchStatus, Engine
from tests.items import file_job

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ROWS = 1200


def make_input(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["id", "name", "qty", "price"])
        for i in range(ROWS):
            name = f"item {i}" if i % 7 else f'näme "{i}",\nsecond line'
            out.writerow([i, name, i % 13, f"{i % 100}.{i % 10}5"])


def run_child(
    url: str,
    source: Path,
    target: Path,
    restart: int | None,
    crash: str | None,
    delay: float | None,
) -> int:
    env = {k: v for k, v in os.environ.items() if k != file_job.CRASH_ENV}
    if crash:
        env[file_job.CRASH_ENV] = crash
    argv = [sys.executable, "-m", "tests.items.file_job", url, str(source), str(target)]
    if restart is not None:
        argv += ["--restart", str(restart)]
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        output, _ = proc.communicate(timeout=delay if delay is not None else 120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        output, _ = proc.communicate()
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"child failed ({proc.returncode}): {output.decode()[-3000:]}")
    return proc.returncode


class TestFileJobSigkill:
    def test_killed_and_restarted_output_equals_clean_run(self, tmp_path: Path) -> None:
        """SIGKILL mid-read, mid-write, before and after a commit and at a random instant:
        after restarts the output file is byte-identical to an uninterrupted run's."""
        seed = int(os.environ.get("BATCHLINE_CRASH_SEED") or random.randrange(2**32))
        rng = random.Random(seed)
        source = tmp_path / "in.csv"
        make_input(source)
        clean = tmp_path / "clean.csv"
        assert run_child(f"sqlite:///{tmp_path / 'clean.db'}", source, clean, None, None, None) == 0

        url = f"sqlite:///{tmp_path / 'repository.db'}"
        target = tmp_path / "out.csv"
        chunks = ROWS // file_job.CHUNK_SIZE
        plan = [
            f"reader:{rng.randint(1, file_job.CHUNK_SIZE * 4)}",
            f"mid_write:{rng.randint(1, chunks // 6)}",
            f"before_commit:{rng.randint(1, chunks // 6)}",
            f"after_commit:{rng.randint(1, chunks // 6)}",
            "delay",
        ]
        kills = 0
        with Engine(url) as engine:
            last: int | None = None
            for step in [*plan, "finish"]:
                crash = step if step not in ("delay", "finish") else None
                delay = rng.uniform(0.8, 2.0) if step == "delay" else None
                code = run_child(url, source, target, last, crash, delay)
                kills += code == -signal.SIGKILL
                executions = engine.list_executions(file_job.JOB_NAME, limit=100)
                newest = max(executions, key=lambda e: e.id)
                if newest.status is BatchStatus.COMPLETED:
                    break
                assert code == -signal.SIGKILL, f"{step} did not kill the job (seed {seed})"
                if newest.status.is_running:
                    engine.recover(newest.id, force=True)
                last = newest.id
            assert newest.status is BatchStatus.COMPLETED, f"seed {seed}: {newest.exit_status}"
        assert kills >= 4, f"seed {seed}: only {kills} kills happened"
        assert target.read_bytes() == clean.read_bytes(), f"output differs (seed {seed})"
        assert clean.read_text(encoding="utf-8").endswith(f"# {ROWS} rows\n")
