"""What a launch takes: its parameters (``Params``) and, to run it elsewhere, a ``Launcher``.

Kept apart from ``engine.py`` so that what the engine calls (backfills) can name them without
importing the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from batchline.model import JobExecution
from batchline.parameters import JobParameters, ParamValue
from batchline.repository.base import JobRepository

if TYPE_CHECKING:
    from batchline.job import Job

Params = JobParameters | Mapping[str, ParamValue] | None


class Launcher(Protocol):
    """Sends a launched (STARTING) execution to be run elsewhere, e.g. a queue of workers.

    ``claim_timeout``: seconds after which an execution still STARTING is sent again while a
    handle follows it (its message may have been lost with a worker that took it before
    claiming it); None never sends again. The claim makes a second delivery harmless. It is
    also the execution's claim deadline: waiting until then is not death to ``recover``.
    ``check_repository(url, job_name)``, if the launcher has it, refuses a repository its
    workers cannot reach before anything is recorded.
    """

    claim_timeout: float | None

    def send(self, job: Job, execution: JobExecution, repository: JobRepository) -> None: ...
