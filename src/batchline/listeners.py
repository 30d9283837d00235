"""Listener protocols: job, step, chunk. Every method is optional; implement the ones you need.

A listener is any object with some of these methods; batchline calls the ones it finds.
``after_step`` may return an ExitStatus that replaces the step's; that exit status routes the
job's flow and, when the step is the job's last, becomes the job's exit status.

Listeners nest like context managers: ``before_*`` callbacks run in registration order, the
``after_*`` ones (``after_job``, ``after_step``, ``after_chunk``, ``on_chunk_error``) in
reverse, so the first listener registered is the outermost (it sees first and last).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from batchline.items.base import Chunk
    from batchline.model import JobExecution, StepExecution
    from batchline.status import ExitStatus


class JobListener(Protocol):
    """Called before and after a job execution.

    Every method is optional: batchline calls the ones the listener has."""

    def before_job(self, execution: JobExecution) -> None: ...

    def after_job(self, execution: JobExecution) -> None: ...


class StepListener(Protocol):
    """Called before and after a step execution.

    Every method is optional: batchline calls the ones the listener has. An ``ExitStatus``
    returned by ``after_step`` replaces the step's, and routes the job's flow."""

    def before_step(self, step_execution: StepExecution) -> None: ...

    def after_step(self, step_execution: StepExecution) -> ExitStatus | None: ...


class ChunkListener(Protocol):
    """Called before and after each chunk, and when a chunk rolls back.

    Every method is optional: batchline calls the ones the listener has."""

    def before_chunk(self, chunk: Chunk) -> None: ...

    def after_chunk(self, chunk: Chunk) -> None:
        """Called after the chunk committed."""

    def on_chunk_error(self, chunk: Chunk, error: BaseException) -> None:
        """Called after the chunk rolled back."""


def callbacks(
    listeners: Sequence[Any], method: str, *, reverse: bool = False
) -> list[Callable[..., Any]]:
    """The bound methods named ``method`` of the listeners that have one, in registration order,
    or in reverse (``reverse=True``, for after-callbacks: listeners nest)."""
    found = [fn for fn in (getattr(lst, method, None) for lst in listeners) if callable(fn)]
    return found[::-1] if reverse else found
