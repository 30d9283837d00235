"""A simple step: run a callable (or an object with ``execute``) once, or again while it says
"continue".

``task(step_execution)`` or ``task(step_execution, chunk)``. Returning an ExitStatus sets the
step's; returning ``"continue"`` asks to be called again. Between calls the step's progress (its
context and counters) is saved and the run control is asked, so a stop request ends the step
STOPPED between two calls and a restart resumes with the context the last call left.

A task of two parameters gets a Chunk whose ``connection`` is a transaction of the step's
transaction manager: each call runs in its own transaction, and when that reaches the
repository's database the call's progress commits in it, so a crash repeats no call's writes.
A task of one parameter runs outside any transaction; after a "continue" its progress is saved
right away (a crash between the two repeats that one call).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from batchline.items.base import Chunk
from batchline.model import ExecutionContext, StepContribution, StepExecution
from batchline.status import BatchStatus, ExitStatus
from batchline.steps.base import StepOptions, StepRuntime

CONTINUE = "continue"
# How many calls earlier executions made: call numbers go on across restarts.
_CALLS_KEY = "batchline.calls"


class SimpleStep:
    """Calls ``task(step_execution[, chunk])`` until it returns anything but "continue"."""

    def __init__(
        self, name: str, task: Callable[..., Any], options: StepOptions | None = None
    ) -> None:
        self.name = name
        self.task = task
        opts = options or StepOptions()
        self.allow_start_if_complete = opts.allow_start_if_complete
        self.start_limit = opts.start_limit
        self.listeners = list(opts.listeners)
        self._wants_chunk = _named_positionals(task) >= 2

    def __repr__(self) -> str:
        return f"SimpleStep({self.name!r})"

    def execute(self, step_execution: StepExecution, runtime: StepRuntime) -> None:
        se = step_execution
        calls = int(se.context.get(_CALLS_KEY, 0))
        first = True
        while True:
            if not first:
                reason = runtime.control.at_chunk_boundary(self.name, None, calls)
                if reason is not None:
                    se.set_status(BatchStatus.STOPPING)
                    return
            first = False
            calls += 1
            result, stop = self._call(se, runtime, calls)
            if isinstance(result, ExitStatus):
                se.exit_status = result
            if not _continues(result):
                return
            if stop:
                runtime.control.stop_seen()
                se.set_status(BatchStatus.STOPPING)
                return

    def _call(self, se: StepExecution, runtime: StepRuntime, number: int) -> tuple[Any, bool]:
        """One call; True beside its result when saving its progress found a stop request."""
        repo = runtime.repository
        if not self._wants_chunk:
            result = self.task(se)
            if not _continues(result):
                return result, False
            progress = self._progress(se, number)
            stop = repo.save_chunk_progress(se, progress)
            progress.apply(se)
            return result, stop
        tm = runtime.transaction_manager
        shared = repo.shares_connection_with(tm)
        with tm.begin() as tx:
            result = self.task(se, Chunk(number, tx.connection, se))
            progress = self._progress(se, number)
            stop = repo.save_chunk_progress(se, progress, tx.connection) if shared else False
        if not shared:
            stop = repo.save_chunk_progress(se, progress)
        progress.apply(se)
        return result, stop

    @staticmethod
    def _progress(se: StepExecution, number: int) -> StepContribution:
        context = ExecutionContext(dict(se.context))
        context[_CALLS_KEY] = number
        return StepContribution(context)


def _continues(result: Any) -> bool:
    return isinstance(result, str) and result == CONTINUE


def _named_positionals(task: Callable[..., Any]) -> int:
    """Positional parameters the task needs: ``*args`` (print, a wrapper) does not ask for a
    chunk, and so for a transaction held across the call, nor does a parameter with a default
    (``lambda se, n=n: ...`` binds ``n`` itself)."""
    try:
        params = inspect.signature(task).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in params if p.kind in kinds and p.default is p.empty)
