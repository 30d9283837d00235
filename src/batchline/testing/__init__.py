"""Helpers for testing your own jobs, steps, readers and writers (like click's CliRunner).

Run one step on a throwaway repository::

    with temporary_engine() as engine:
        execution = run_step(engine, my_step)
        assert execution.status is BatchStatus.COMPLETED

put your own reader or writer through the contract kit with ``check_reader`` and
``check_writer`` (``batchline.testing.contract``), and wait for what a job started with
``start_async`` does with ``eventually``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from batchline.engine import Engine
from batchline.job import Job
from batchline.model import JobExecution
from batchline.parameters import ParamValue
from batchline.steps.base import Step
from batchline.testing.contract import check_reader
from batchline.testing.crash import CrashInjector
from batchline.testing.polling import eventually
from batchline.testing.violations import ContractViolation
from batchline.testing.writer_contract import check_writer

__all__ = [
    "ContractViolation",
    "CrashInjector",
    "check_reader",
    "check_writer",
    "eventually",
    "run_step",
    "temporary_engine",
]


@contextmanager
def temporary_engine(**options: float) -> Iterator[Engine]:
    """An Engine on a throwaway SQLite repository, deleted when the block ends."""
    with tempfile.TemporaryDirectory(prefix="batchline-") as folder:
        url = f"sqlite:///{Path(folder) / 'repository.db'}"
        with Engine(url, **options) as engine:  # type: ignore[arg-type]
            yield engine


def run_step(
    engine: Engine, step: Step, parameters: Mapping[str, ParamValue] | None = None
) -> JobExecution:
    """Run one step as a one-step job named after it; returns the finished execution."""
    job = Job(f"test:{step.name}", [step])
    return engine.start(job, parameters)
