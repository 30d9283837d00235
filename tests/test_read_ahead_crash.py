"""SIGKILL a COPY job that reads ahead, restart it until it completes: every row exactly once.

The child (tests/jobs/read_ahead_job.py) loads a CSV file (quoted fields spanning lines) into
PostgreSQL with PostgresCopyWriter, the repository on the same database, chunks of 50, the
read-ahead on. It kills itself inside ``read()`` on the read-ahead thread, after a chunk's COPY
while the next chunk is being read ahead, and right after a commit; one more run is killed by
the parent after a random delay. After every kill the rows in the table must equal the step's
committed write count, and at the end the table must hold each record of the file once.
Rerun a failure with BATCHLINE_CRASH_SEED=<seed>.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Engine
from tests.backends import fresh_database
from tests.jobs import read_ahead_job

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ROWS = 3000


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


def make_input(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["id", "name", "qty"])
        for i in range(ROWS):
            name = f"item {i}" if i % 7 else f'näme "{i}",\nsecond\tline'
            out.writerow([i, name, i % 13])


def run_child(
    url: str, source: Path, restart: int | None, crash: str | None, delay: float | None
) -> int:
    env = {k: v for k, v in os.environ.items() if k != read_ahead_job.CRASH_ENV}
    if crash:
        env[read_ahead_job.CRASH_ENV] = crash
    argv = [sys.executable, "-m", "tests.jobs.read_ahead_job", url, str(source)]
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


def table_rows(url: str) -> list[tuple[int, str, int]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text(f"SELECT id, name, qty FROM {read_ahead_job.TABLE}")).all()
    except sa.exc.ProgrammingError:
        found = []  # killed before the table was created
    finally:
        engine.dispose()
    return [(r[0], r[1], r[2]) for r in found]


class TestReadAheadSigkill:
    def test_killed_and_restarted_loads_every_row_exactly_once(
        self, pg_url: str, tmp_path: Path
    ) -> None:
        """SIGKILL on the read-ahead thread, between COPY and commit, after a commit and at
        a random instant: committed rows always equal the committed count, and the table
        ends with every record of the file once."""
        seed = int(os.environ.get("BATCHLINE_CRASH_SEED") or random.randrange(2**32))
        rng = random.Random(seed)
        source = tmp_path / "in.csv"
        make_input(source)
        chunks = ROWS // read_ahead_job.CHUNK_SIZE
        plan = [
            # the reader passes ~CHUNK_SIZE times per chunk: n past the first chunk is on the
            # read-ahead thread
            f"reader:{rng.randint(read_ahead_job.CHUNK_SIZE + 2, read_ahead_job.CHUNK_SIZE * 6)}",
            f"written:{rng.randint(1, chunks // 6)}",
            f"after_commit:{rng.randint(1, chunks // 6)}",
            f"written:{rng.randint(1, chunks // 6)}",
            "delay",
        ]
        kills = 0
        with Engine(pg_url) as engine:
            last: int | None = None
            for step in [*plan, "finish"]:
                crash = step if step not in ("delay", "finish") else None
                delay = rng.uniform(0.5, 1.5) if step == "delay" else None
                code = run_child(pg_url, source, last, crash, delay)
                kills += code == -signal.SIGKILL
                executions = engine.list_executions(read_ahead_job.JOB_NAME, limit=100)
                newest = max(executions, key=lambda e: e.id)
                committed = sum(
                    se.write_count
                    for e in executions
                    for se in engine.get_execution(e.id).step_executions
                )
                rows = table_rows(pg_url)
                assert len(rows) == committed, f"seed {seed} after {step}: rows != committed"
                if newest.status is BatchStatus.COMPLETED:
                    break
                assert code == -signal.SIGKILL, f"{step} did not kill the job (seed {seed})"
                if newest.status.is_running:
                    engine.recover(newest.id, force=True)
                last = newest.id
            assert newest.status is BatchStatus.COMPLETED, f"seed {seed}: {newest.exit_status}"
        assert kills >= 4, f"seed {seed}: only {kills} kills happened"
        rows = table_rows(pg_url)
        counts = Counter(r[0] for r in rows)
        assert [i for i, n in counts.items() if n > 1] == [], f"duplicates (seed {seed})"
        assert sorted(counts) == list(range(ROWS)), f"missing rows (seed {seed})"
        with source.open(newline="", encoding="utf-8") as f:
            expected = {(int(r["id"]), r["name"], int(r["qty"])) for r in csv.DictReader(f)}
        assert set(rows) == expected
