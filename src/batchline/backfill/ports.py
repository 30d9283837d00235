"""What a backfill asks of the engine, as a protocol: ``engine.py``'s backfill methods import
this package, so the package names no engine module (no import cycle, not even for types)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol

from batchline.launching import Launcher, Params
from batchline.model import JobExecution
from batchline.registry import JobRegistry
from batchline.repository.base import JobRepository

if TYPE_CHECKING:
    from batchline.job import Job


class Followed(Protocol):
    """A queued execution's handle (``engine.JobHandle``): its id and its outcome to come."""

    @property
    def execution_id(self) -> int: ...

    @property
    def future(self) -> Future[JobExecution]: ...


class BackfillEngine(Protocol):
    """The part of ``batchline.Engine`` a backfill uses."""

    registry: JobRegistry
    repository: JobRepository
    lease: float
    heartbeat_interval: float

    def launch(
        self, job: Job | str, parameters: Params = None, *, new_instance_only: bool = False
    ) -> tuple[Job, JobExecution]: ...

    def run(self, job: Job | str, execution: JobExecution) -> JobExecution: ...

    def start_async(
        self,
        job: Job | str,
        parameters: Params = None,
        *,
        new_instance_only: bool = False,
        on: Launcher | None = None,
    ) -> Followed: ...

    def stop(self, execution_id: int) -> JobExecution: ...

    def recover(
        self,
        execution_id: int | None = None,
        *,
        force: bool = False,
        skipped: Callable[[int, str], None] | None = None,
    ) -> list[JobExecution]: ...
