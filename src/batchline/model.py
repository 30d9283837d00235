"""What the job repository records: instances, executions, step executions, contexts.

Plain dataclasses: the repository turns them into rows and back; the engine and steps mutate them
only from the thread that runs them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from batchline.errors import ExecutionContextError
from batchline.parameters import JobParameters
from batchline.status import BatchStatus, ExitStatus


def utcnow() -> dt.datetime:
    # Naive UTC: every backend stores it the same way (MySQL's DATETIME has no zone).
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class ExecutionContext(MutableMapping[str, Any]):
    """A JSON-only key/value store a step or job keeps across commits and restarts."""

    __slots__ = ("_data", "dirty")

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data or {})
        self.dirty = False

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if self._data.get(key, _MISSING) != value:
            self._data[key] = value
            self.dirty = True

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self.dirty = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ExecutionContext({self._data!r})"

    def to_json(self) -> str:
        try:
            return json.dumps(self._data, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            for key, value in self._data.items():
                found = non_finite(value, key)
                if found is not None:
                    raise ExecutionContextError(
                        f"execution context key {found[0]!r} holds {found[1]!r}, which JSON "
                        "cannot store (store it as a string or None)"
                    ) from None
            bad = [k for k, v in self._data.items() if not _is_json(v)]
            raise ExecutionContextError(
                f"execution context key(s) {bad} hold values that are not JSON: {exc}"
            ) from None

    @classmethod
    def from_json(cls, text: str | None) -> ExecutionContext:
        return cls(json.loads(text) if text else {})

    def copy(self) -> ExecutionContext:
        return ExecutionContext(json.loads(self.to_json()))

    def replace(self, other: ExecutionContext) -> None:
        """Take the other context's entries (shallow), keeping this object's identity."""
        if other._data != self._data:
            self._data = dict(other._data)
            self.dirty = True


_MISSING = object()


def check_status_change(persisted: BatchStatus, target: BatchStatus, what: str) -> None:
    """A status may change to any status the stored one may become (or back to it).

    The table governs what the repository records; between two writes a status may pass through
    a state it never stores: a step is COMPLETED in memory while its after-step listeners run,
    and FAILED if one of them raises (STARTED -> FAILED is what gets written). Repositories
    call it before every status write, so an illegal write raises IllegalTransition.
    """
    if target is not persisted:
        persisted.check_transition(target, what=what)


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def non_finite(value: Any, path: str = "") -> tuple[str, float] | None:
    """Where in a JSON-like value a NaN or infinity sits (``key.sub[2]``) and which, or None.

    Python's json writes them as the bare words NaN and Infinity, which no other JSON parser
    (PostgreSQL's included) accepts, so they are refused rather than stored.
    """
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    if isinstance(value, dict):
        for key, inner in value.items():
            found = non_finite(inner, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            found = non_finite(inner, f"{path}[{index}]")
            if found is not None:
                return found
    return None


@dataclass(slots=True)
class JobInstance:
    """A job name with its identifying parameters: what runs once to completion.

    Attributes:
        id: the instance's id in the repository.
        job_name: the job's name.
        job_key: SHA-256 of the identifying parameters' canonical JSON."""

    id: int
    job_name: str
    job_key: str


@dataclass(slots=True)
class JobExecution:
    """One run of a job instance, as the repository records it.

    Attributes:
        id: the execution's id in the repository.
        instance: the job instance it runs.
        parameters: the parameters it was launched with.
        status: where it is in its lifecycle.
        exit_status: how it ended (code and description).
        context: the job's execution context.
        create_time: when it was created.
        start_time: when it started, or None.
        end_time: when it ended, or None.
        last_updated: when it was last written.
        version: the row's version, for optimistic locking.
        step_executions: its steps' executions, in the order they ran.
        failures: the exceptions it failed with (in this process only)."""

    id: int
    instance: JobInstance
    parameters: JobParameters
    status: BatchStatus = BatchStatus.STARTING
    exit_status: ExitStatus = field(default_factory=lambda: ExitStatus("UNKNOWN"))
    context: ExecutionContext = field(default_factory=ExecutionContext)
    create_time: dt.datetime = field(default_factory=utcnow)
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    last_updated: dt.datetime | None = None
    version: int = 0
    step_executions: list[StepExecution] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    # The status the repository holds: every change is checked against it (see set_status).
    persisted_status: BatchStatus = field(default=BatchStatus.STARTING, init=False, repr=False)

    def __post_init__(self) -> None:
        self.persisted_status = self.status

    @property
    def job_name(self) -> str:
        return self.instance.job_name

    def set_status(self, status: BatchStatus) -> None:
        check_status_change(self.persisted_status, status, f"job execution {self.id}")
        self.status = status

    def adopt(self, stored: JobExecution) -> None:
        """Take what the repository holds for this execution (written by someone else, or by a
        fallback that bypassed the usual write): status, version, exit status."""
        self.persisted_status = self.status = stored.status
        self.version = stored.version
        self.exit_status = stored.exit_status

    def adopt_stop(self, version: int) -> None:
        """Another process recorded a stop request (STOPPING, ``version``): take it as ours."""
        self.persisted_status = BatchStatus.STOPPING
        self.version = version
        if self.status in (BatchStatus.STARTING, BatchStatus.STARTED):
            self.status = BatchStatus.STOPPING

    def step(self, name: str) -> StepExecution:
        for step in self.step_executions:
            if step.step_name == name:
                return step
        raise KeyError(f"job execution {self.id} has no step {name!r}")


COUNTERS = (
    "read_count",
    "write_count",
    "filter_count",
    "commit_count",
    "rollback_count",
    "read_skip_count",
    "process_skip_count",
    "write_skip_count",
)


@dataclass(slots=True)
class StepExecution:
    """One run of a step, with its counters and execution context.

    Attributes:
        id: the step execution's id in the repository.
        job_execution_id: the job execution it belongs to.
        step_name: the step's name.
        status: where it is in its lifecycle.
        exit_status: how it ended (code and description).
        context: the step's execution context (readers' and writers' positions, your values).
        read_count: items read.
        write_count: items written.
        filter_count: items the processor filtered out (returned None for).
        commit_count: chunks committed.
        rollback_count: chunks rolled back.
        read_skip_count: items skipped while reading.
        process_skip_count: items skipped while processing.
        write_skip_count: items skipped while writing.
        start_time: when it started, or None.
        end_time: when it ended, or None.
        last_updated: when it was last written.
        version: the row's version, for optimistic locking.
        job_execution: the job execution, when loaded with it.
        failures: the exceptions it failed with (in this process only)."""

    id: int
    job_execution_id: int
    step_name: str
    status: BatchStatus = BatchStatus.STARTING
    exit_status: ExitStatus = field(default_factory=lambda: ExitStatus("EXECUTING"))
    context: ExecutionContext = field(default_factory=ExecutionContext)
    read_count: int = 0
    write_count: int = 0
    filter_count: int = 0
    commit_count: int = 0
    rollback_count: int = 0
    read_skip_count: int = 0
    process_skip_count: int = 0
    write_skip_count: int = 0
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    last_updated: dt.datetime | None = None
    version: int = 0
    job_execution: JobExecution | None = field(default=None, repr=False)
    failures: list[BaseException] = field(default_factory=list, repr=False)
    persisted_status: BatchStatus = field(default=BatchStatus.STARTING, init=False, repr=False)

    def __post_init__(self) -> None:
        self.persisted_status = self.status

    @property
    def skip_count(self) -> int:
        return self.read_skip_count + self.process_skip_count + self.write_skip_count

    @property
    def parameters(self) -> JobParameters:
        return self.job_execution.parameters if self.job_execution else JobParameters()

    def set_status(self, status: BatchStatus) -> None:
        check_status_change(
            self.persisted_status, status, f"step execution {self.step_name}#{self.id}"
        )
        self.status = status

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}

    def restore_counters(self, counters: dict[str, int]) -> None:
        for name, value in counters.items():
            setattr(self, name, value)


@dataclass(slots=True)
class StepContribution:
    """What one chunk adds to its step execution (Spring's StepContribution).

    Counted while the chunk runs; the repository saves the step execution as it will be once the
    chunk commits (``counters_after``), and only after the commit does ``apply`` change the
    StepExecution. A chunk that rolls back just drops its contribution: nothing to undo.
    """

    context: ExecutionContext
    read: int = 0
    written: int = 0
    filtered: int = 0
    read_skips: int = 0
    process_skips: int = 0
    write_skips: int = 0
    last_updated: dt.datetime = field(default_factory=utcnow)

    @property
    def skips(self) -> int:
        return self.read_skips + self.process_skips + self.write_skips

    def counters_after(self, se: StepExecution) -> dict[str, int]:
        return {
            "read_count": se.read_count + self.read,
            "write_count": se.write_count + self.written,
            "filter_count": se.filter_count + self.filtered,
            "commit_count": se.commit_count + 1,
            "rollback_count": se.rollback_count,
            "read_skip_count": se.read_skip_count + self.read_skips,
            "process_skip_count": se.process_skip_count + self.process_skips,
            "write_skip_count": se.write_skip_count + self.write_skips,
        }

    def apply(self, se: StepExecution) -> None:
        """The chunk committed: its counts, context and a new version become the step's."""
        se.restore_counters(self.counters_after(se))
        se.context.replace(self.context)
        se.version += 1
        se.last_updated = self.last_updated


@dataclass(slots=True)
class StepContext:
    """One per job instance and step, kept across executions (GoBatch's StepContext).

    ``context`` is the step's context as its last execution left it; ``start_count`` counts the
    executions of this step in this instance (for ``start_limit``).
    """

    job_instance_id: int
    step_name: str
    start_count: int = 0
    last_step_execution_id: int | None = None
    last_status: BatchStatus | None = None
    context: ExecutionContext = field(default_factory=ExecutionContext)


# Skipped items keep this much of their raw input or repr; the rest is cut with a marker.
SKIPPED_ITEM_MAX_CHARS = 4000


@dataclass(slots=True)
class SkippedItem:
    """One skipped item as recorded: where (phase, position), what (item), why (error)."""

    step_execution_id: int
    job_execution_id: int
    phase: str
    position: str | None
    item: str | None
    error_type: str
    error_message: str
    create_time: dt.datetime = field(default_factory=utcnow)
    id: int | None = None
    step_name: str | None = None

    @staticmethod
    def describe(item: Any) -> str | None:
        """The item as text (JSON when it can be), cut to SKIPPED_ITEM_MAX_CHARS."""
        if item is None:
            return None
        if isinstance(item, str):
            text = item
        elif isinstance(item, bytes | bytearray | memoryview):
            # A raw record (CsvRecordReader) is shown as the line it was, not as b'...'.
            text = bytes(item).decode("utf-8", "backslashreplace").rstrip("\r\n")
        else:
            try:
                text = json.dumps(item, default=str, sort_keys=True)
            except (TypeError, ValueError):
                text = repr(item)
        if len(text) > SKIPPED_ITEM_MAX_CHARS:
            text = text[: SKIPPED_ITEM_MAX_CHARS - 14] + "...[truncated]"
        return text
