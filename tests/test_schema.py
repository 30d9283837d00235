"""The migrations build exactly the schema the code queries, and the database holds the rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from batchline import (
    JobExecutionAlreadyRunning,
    JobParameters,
    OptimisticLockingFailure,
    SqlJobRepository,
)
from batchline.repository import create_engine, migrate
from batchline.repository.schema import job_execution, metadata


class TestMigrations:
    def test_migrated_schema_matches_metadata(self, db_url: str) -> None:
        """Alembic finds no difference between the migrated database and schema.py."""
        engine = create_engine(db_url)
        migrate(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table": "batchline_alembic_version"}
            )
            diff = compare_metadata(context, metadata)
        engine.dispose()
        # MySQL adds an index for every foreign key by itself; that is not a difference.
        diff = [d for d in diff if not (d[0] == "add_index" and d[1].name is None)]
        assert diff == []

    def test_upgrade_is_idempotent(self, db_url: str) -> None:
        """Upgrading an up-to-date repository changes nothing and does not fail."""
        engine = create_engine(db_url)
        migrate(engine)
        migrate(engine)
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM batchline_alembic_version"))
            assert [row[0] for row in version] == ["0008"]
        engine.dispose()

    def test_the_head_revision_constant_is_alembics_head(self) -> None:
        """HEAD_REVISION (the check that skips importing Alembic) names the newest migration:
        a migration added without moving it would leave repositories unmigrated."""
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        from batchline.repository.database import HEAD_REVISION

        config = Config()
        config.set_main_option("script_location", "batchline.repository:migrations")
        assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]

    def test_a_repository_at_head_is_opened_without_alembic(self, tmp_path: Path) -> None:
        """Opening an up-to-date repository in a fresh process imports no Alembic module; a
        new one is migrated (and imports it)."""
        url = f"sqlite:///{tmp_path / 'repo.db'}"
        probe = (
            "import sys; from batchline import Engine; Engine(sys.argv[1]).close(); "
            "print(any(m == 'alembic' or m.startswith('alembic.') for m in sys.modules))"
        )

        def alembic_imported() -> str:
            done = subprocess.run(
                [sys.executable, "-c", probe, url], capture_output=True, text=True, check=True
            )
            return done.stdout.strip()

        assert alembic_imported() == "True"  # a new repository: migrated
        assert alembic_imported() == "False"  # at head: one SELECT


class TestInvariants:
    def test_second_running_execution_is_refused_by_the_database(self, db_url: str) -> None:
        """Inserting a second running execution of an instance violates a unique constraint."""
        repo = SqlJobRepository(db_url)
        first = repo.create_job_execution("job", JobParameters({"a": 1}))
        row = {
            "job_instance_id": first.instance.id,
            "version": 0,
            "status": "STARTED",
            "exit_code": "",
            "exit_message": "",
            "parameters": "{}",
            "context": "{}",
            "create_time": first.create_time,
            "running_instance_id": first.instance.id,
            "job_name": "job",
        }
        with pytest.raises(sa.exc.IntegrityError), repo.engine.begin() as conn:
            conn.execute(job_execution.insert().values(**row))
        repo.dispose()

    def test_launch_while_running_is_refused(self, db_url: str) -> None:
        """A second launch of a running instance raises JobExecutionAlreadyRunning."""
        repo = SqlJobRepository(db_url)
        repo.create_job_execution("job", JobParameters({"a": 1}))
        with pytest.raises(JobExecutionAlreadyRunning, match="already running"):
            repo.create_job_execution("job", JobParameters({"a": 1}))
        repo.dispose()

    def test_stale_step_execution_update_is_refused(self, db_url: str) -> None:
        """Saving a step execution with an outdated version raises OptimisticLockingFailure."""
        repo = SqlJobRepository(db_url)
        execution = repo.create_job_execution("job", JobParameters({"a": 2}))
        step = repo.create_step_execution(execution, "s", None)
        repo.update_step_execution(step)
        step.version -= 1
        with pytest.raises(OptimisticLockingFailure, match="changed by someone else"):
            repo.update_step_execution(step)
        repo.dispose()
