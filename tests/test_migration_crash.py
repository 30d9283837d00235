"""Killed (SIGKILL, a real process) at any step of the first migration, on any backend, the
next start completes it: MariaDB commits each CREATE at once, so its migrations must be able
to run again over what a killed one left."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from batchline import JobParameters, SqlJobRepository
from batchline.repository import create_engine, migrate
from batchline.repository.schema import metadata
from tests.backends import BACKENDS, fresh_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def migrate_in_child(url: str, kill_after: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.jobs.migrate_crash", url, str(kill_after)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def schema_differences(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": "batchline_alembic_version"}
        )
        diff = compare_metadata(context, metadata)
        version = conn.execute(sa.text("SELECT version_num FROM batchline_alembic_version"))
        versions = [row[0] for row in version]
    # MySQL adds an index for every foreign key by itself; that is not a difference.
    diff = [d for d in diff if not (d[0] == "add_index" and d[1].name is None)]
    return [*diff, *([] if versions == ["0008"] else [("version", versions)])]


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_at_every_migration_step(backend: str, tmp_path: Path) -> None:
    """For every statement of a first migration (a sample where DDL is transactional): kill
    after it, start again, and the schema equals schema.py at the newest revision, and a
    launch works."""
    with fresh_database(backend, tmp_path / "count") as url:
        clean = migrate_in_child(url, 0)
        assert clean.returncode == 0, clean.stderr
        steps = int(clean.stdout.strip().splitlines()[-1])
    assert steps >= 10  # tables, indexes and the version: every one is a kill point
    points = list(range(1, steps + 1))
    if backend != "mariadb":
        # Transactional DDL: a kill anywhere rolls the whole migration back, so every fifth
        # point and the last two (around the version stamp) stand for the rest. MariaDB
        # commits each statement: there every point is its own case.
        points = sorted({*points[::5], *points[-2:]})
    for step in points:
        with fresh_database(backend, tmp_path / str(step)) as url:
            killed = migrate_in_child(url, step)
            assert killed.returncode == -signal.SIGKILL, (step, killed.stderr[-2000:])
            engine = create_engine(url)
            migrate(engine)
            assert schema_differences(engine) == [], f"killed after statement {step}"
            engine.dispose()
            repo = SqlJobRepository(url)
            repo.create_job_execution("after_crash", JobParameters({"step": step}))
            repo.dispose()
