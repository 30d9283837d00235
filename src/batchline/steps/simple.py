"""A simple step: run a callable (or an object with ``execute``) once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchline.model import StepExecution
from batchline.status import ExitStatus
from batchline.steps.base import StepOptions, StepRuntime


class SimpleStep:
    """Calls ``task(step_execution)``; an ExitStatus it returns becomes the step's."""

    def __init__(
        self, name: str, task: Callable[[StepExecution], Any], options: StepOptions | None = None
    ) -> None:
        self.name = name
        self.task = task
        opts = options or StepOptions()
        self.allow_start_if_complete = opts.allow_start_if_complete
        self.start_limit = opts.start_limit
        self.listeners = list(opts.listeners)

    def __repr__(self) -> str:
        return f"SimpleStep({self.name!r})"

    def execute(self, step_execution: StepExecution, runtime: StepRuntime) -> None:
        result = self.task(step_execution)
        if isinstance(result, ExitStatus):
            step_execution.exit_status = result
