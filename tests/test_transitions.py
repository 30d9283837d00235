"""The transition table is enforced: in memory by set_status, and on every repository write."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from batchline import (
    BatchStatus,
    Engine,
    IllegalTransition,
    JobBuilder,
    JobParameters,
    StepBuilder,
)

SOURCE = Path(__file__).resolve().parents[1] / "src" / "batchline"


def _finished_step(engine: Engine) -> tuple[int, str]:
    job = JobBuilder("t").step(StepBuilder("only").task(lambda se: None)).build()
    execution = engine.start(job, {"run": 1})
    assert execution.status is BatchStatus.COMPLETED
    return execution.id, "only"


class TestRepositoryWrites:
    def test_illegal_step_status_write_raises(self, engine: Engine) -> None:
        """A COMPLETED step execution written back as STARTED raises IllegalTransition and the
        stored row keeps COMPLETED."""
        execution_id, _ = _finished_step(engine)
        [step] = engine.repository.step_executions(execution_id)
        step.status = BatchStatus.STARTED  # bypasses set_status on purpose
        with pytest.raises(IllegalTransition, match="COMPLETED -> STARTED"):
            engine.repository.update_step_execution(step)
        [stored] = engine.repository.step_executions(execution_id)
        assert stored.status is BatchStatus.COMPLETED

    def test_illegal_job_status_write_raises(self, engine: Engine) -> None:
        """A FAILED job execution written back as COMPLETED raises IllegalTransition."""
        job = JobBuilder("f").step(StepBuilder("boom").task(_boom)).build()
        failed = engine.start(job)
        assert failed.status is BatchStatus.FAILED
        loaded = engine.repository.get_job_execution(failed.id)
        loaded.status = BatchStatus.COMPLETED
        with pytest.raises(IllegalTransition, match="FAILED -> COMPLETED"):
            engine.repository.update_job_execution(loaded)
        assert engine.repository.get_job_execution(failed.id).status is BatchStatus.FAILED

    def test_legal_write_moves_the_persisted_status(self, engine: Engine) -> None:
        """After a write, later changes are judged from the status just stored."""
        execution = engine.repository.create_job_execution("p", JobParameters())
        execution.set_status(BatchStatus.STARTED)
        engine.repository.update_job_execution(execution)
        assert execution.persisted_status is BatchStatus.STARTED
        execution.set_status(BatchStatus.COMPLETED)
        engine.repository.update_job_execution(execution)
        with pytest.raises(IllegalTransition):
            execution.set_status(BatchStatus.STARTED)


class TestInMemory:
    def test_a_step_may_pass_through_completed_to_failed(self, engine: Engine) -> None:
        """A step COMPLETED in memory whose after-step listener raises ends FAILED: what is
        written is STARTED -> FAILED, which the table allows."""

        class Failing:
            def after_step(self, se: object) -> None:
                raise RuntimeError("listener broke")

        step = StepBuilder("s").task(lambda se: None).listener(Failing()).build()
        execution = engine.start(JobBuilder("l").step(step).build())
        assert execution.status is BatchStatus.FAILED
        [stored] = engine.repository.step_executions(execution.id)
        assert stored.status is BatchStatus.FAILED
        assert "listener broke" in stored.exit_status.description


def _boom(se: object) -> None:
    raise ValueError("boom")


class TestNoDirectStatusAssignment:
    def test_only_the_model_assigns_status(self) -> None:
        """Outside model.py no module assigns ``.status`` directly: every change goes through
        set_status (and so through the transition table)."""
        offenders = []
        for path in SOURCE.rglob("*.py"):
            if path.name == "model.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                targets = node.targets if isinstance(node, ast.Assign) else []
                for target in targets:
                    if isinstance(target, ast.Attribute) and target.attr == "status":
                        offenders.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
        assert not offenders, f"direct status assignments: {offenders}"
