"""Columnar jobs killed with SIGKILL at random moments and restarted with another batch size:
the output equals what a clean run gives (tests/jobs/columnar_job.py is the job).

CSV into the repository's database (PostgreSQL COPY, MariaDB LOAD DATA, SQLAlchemy on SQLite),
and Parquet into Parquet, each on the three repository backends. Rerun a failure with
BATCHLINE_CRASH_SEED=<seed>.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Engine
from tests.backends import import_extra

pa = import_extra("pyarrow", "arrow")
pq = import_extra("pyarrow.parquet", "arrow")

from tests.jobs import columnar_job  # noqa: E402  (it imports pyarrow: after the check)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ROWS = 3000
SIZES = (64, 250, 701, 1500)


def make_input(folder: Path) -> tuple[Path, Path, list[tuple[int, str, int, int]]]:
    """The CSV (with bad rows) and Parquet inputs, and the rows a clean run writes."""
    lines, good = ["id,name,qty"], []
    for i in range(ROWS):
        if i % 97 == 13:
            lines.append(f"{i},bad {i},x{i}")  # qty is not an integer
        elif i % 211 == 5:
            lines.append(f"{i},short")  # a field missing
        else:
            name = f'"n, {i}"' if i % 5 == 0 else f"n{i}"
            qty = i % 7 - 2
            lines.append(f"{i},{name},{qty}")
            good.append((i, name.strip('"'), qty))
    csv_path = folder / "in.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parquet_path = folder / "in.parquet"
    table = pa.table(
        {
            "id": [r[0] for r in good],
            "name": [r[1] for r in good],
            "qty": [r[2] for r in good],
        },
        schema=columnar_job.SCHEMA,
    )
    pq.write_table(table, parquet_path, row_group_size=333)
    expected = [(i, n, q, 2 * q) for i, n, q in good if q > 0]
    return csv_path, parquet_path, expected


def run_child(argv: list[str], crash: str | None, delay: float | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != columnar_job.CRASH_ENV}
    if crash:
        env[columnar_job.CRASH_ENV] = crash
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.jobs.columnar_job", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = proc.communicate(timeout=delay if delay is not None else 180)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        output, _ = proc.communicate()
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"child failed ({proc.returncode}): {output.decode()[-3000:]}")
    return proc.returncode


def kill_and_restart(url: str, mode: str, source: Path, target: Path, seed: int) -> int:
    """Kill the job at each point and a random delay, restarting with a random batch size,
    until it completes; returns how many runs were killed."""
    rng = random.Random(seed)
    plan = [
        f"reader:{rng.randint(2, 6)}",
        f"before_commit:{rng.randint(1, 3)}",
        f"after_commit:{rng.randint(1, 3)}",
        "delay",
    ]
    kills, last = 0, None
    with Engine(url) as engine:
        for step in [*plan, *["finish"] * 3]:
            # small batches while killing, so that the points are reached; any after
            rows = rng.choice(SIZES[:2] if ":" in step else SIZES)
            argv = [url, mode, str(source), str(target), "--rows", str(rows)]
            if last is not None:
                argv += ["--restart", str(last)]
            crash = step if ":" in step else None
            delay = rng.uniform(1.0, 2.5) if step == "delay" else None
            code = run_child(argv, crash, delay)
            kills += code == -signal.SIGKILL
            newest = max(
                engine.list_executions(columnar_job.JOB_NAME, limit=100), key=lambda e: e.id
            )
            if newest.status is BatchStatus.COMPLETED:
                return kills
            if newest.status.is_running:
                engine.recover(newest.id, force=True)
            last = newest.id
    raise AssertionError(f"seed {seed}: the job never completed ({newest.exit_status})")


def skipped(url: str) -> int:
    with Engine(url) as engine:
        executions = engine.list_executions(columnar_job.JOB_NAME, limit=100)
        return sum(len(engine.skipped_items(e.id)) for e in executions)


class TestColumnarSigkill:
    def test_csv_into_the_database_equals_a_clean_run(self, db_url: str, tmp_path: Path) -> None:
        """CSV into the repository's database, killed and restarted with other batch sizes:
        every good row once, every bad row one skip record."""
        seed = int(os.environ.get("BATCHLINE_CRASH_SEED") or random.randrange(2**32))
        source, _, expected = make_input(tmp_path)
        url = db_url
        if sa.make_url(url).get_backend_name() in ("mysql", "mariadb"):
            url = (
                sa.make_url(url)
                .update_query_dict({"local_infile": "1"})
                .render_as_string(hide_password=False)
            )
        kills = kill_and_restart(url, "db", source, tmp_path / "unused", seed)
        assert kills >= 3, f"seed {seed}: only {kills} kills"
        bind = sa.create_engine(url)
        try:
            with bind.connect() as conn:
                rows = conn.execute(sa.select(columnar_job.trades_out)).all()
        finally:
            bind.dispose()
        assert sorted(tuple(r) for r in rows) == expected, f"seed {seed}"
        bad = sum(1 for i in range(ROWS) if i % 97 == 13 or i % 211 == 5)
        assert skipped(url) == bad, f"seed {seed}"

    def test_parquet_into_parquet_equals_a_clean_run(self, db_url: str, tmp_path: Path) -> None:
        """Parquet into Parquet, killed and restarted with other batch sizes: the file holds
        the clean run's rows in order."""
        seed = int(os.environ.get("BATCHLINE_CRASH_SEED") or random.randrange(2**32))
        _, source, expected = make_input(tmp_path)
        target = tmp_path / "out.parquet"
        kills = kill_and_restart(db_url, "parquet", source, target, seed)
        assert kills >= 3, f"seed {seed}: only {kills} kills"
        table = pq.read_table(target)
        assert list(zip(*table.to_pydict().values(), strict=True)) == expected, f"seed {seed}"
        assert not Path(f"{target}.parts").exists()
