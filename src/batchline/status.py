"""BatchStatus (the seven states of the design plus ABANDONED), its transitions, and ExitStatus.

BatchStatus is what the framework knows about a run; ExitStatus is what the run says about itself
(a free code such as "COMPLETED WITH SKIPS") and maps to process exit codes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from batchline.errors import IllegalTransition


class BatchStatus(enum.StrEnum):
    """Lifecycle state of a job or step execution, listed from least to most severe."""

    COMPLETED = "COMPLETED"
    STARTING = "STARTING"
    STARTED = "STARTED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    ABANDONED = "ABANDONED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_running(self) -> bool:
        return self in _RUNNING

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    def upgrade(self, other: BatchStatus) -> BatchStatus:
        """The more severe of two statuses: how partitions and splits combine."""
        return self if self.severity >= other.severity else other

    def can_become(self, target: BatchStatus) -> bool:
        return target in _TRANSITIONS[self]

    def check_transition(self, target: BatchStatus, *, what: str = "execution") -> None:
        if not self.can_become(target):
            allowed = ", ".join(sorted(_TRANSITIONS[self])) or "nothing (final state)"
            raise IllegalTransition(
                f"{what}: illegal status transition {self.value} -> {target.value}; "
                f"{self.value} may become {allowed}"
            )


_SEVERITY = {status: rank for rank, status in enumerate(BatchStatus)}
_RUNNING = frozenset({BatchStatus.STARTING, BatchStatus.STARTED, BatchStatus.STOPPING})

_S = BatchStatus
# Why UNKNOWN -> FAILED: `recover` turns an execution whose outcome was lost into a restartable
# failure once the operator (or the heartbeat lease) says its process is gone.
_TRANSITIONS: dict[BatchStatus, frozenset[BatchStatus]] = {
    _S.STARTING: frozenset({_S.STARTED, _S.STOPPING, _S.STOPPED, _S.FAILED, _S.UNKNOWN}),
    # STARTED -> STARTING: a remote partition whose worker was lost, offered to another one.
    _S.STARTED: frozenset(
        {_S.STARTING, _S.COMPLETED, _S.STOPPING, _S.STOPPED, _S.FAILED, _S.UNKNOWN}
    ),
    _S.STOPPING: frozenset({_S.STOPPED, _S.COMPLETED, _S.FAILED, _S.UNKNOWN}),
    _S.STOPPED: frozenset({_S.ABANDONED}),
    _S.FAILED: frozenset({_S.ABANDONED}),
    _S.UNKNOWN: frozenset({_S.FAILED, _S.ABANDONED}),
    _S.COMPLETED: frozenset(),
    _S.ABANDONED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """Exit code plus description; listeners may replace it, the CLI maps it to an exit code."""

    code: str
    description: str = ""

    COMPLETED_CODE = "COMPLETED"

    @classmethod
    def of(cls, status: BatchStatus, description: str = "") -> ExitStatus:
        if status is BatchStatus.ABANDONED:
            return cls("ABANDONED", description)
        if status.is_running:
            return cls("EXECUTING", description)
        return cls(status.value, description)

    def with_description(self, description: str) -> ExitStatus:
        return ExitStatus(self.code, description)
