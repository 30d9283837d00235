"""A new instance on demand: the run-id incrementer behind ``Engine.start_next_instance``.

The next ``run.id`` is one more than the newest execution's; the database decides races: the
launch is made with ``new_instance_only``, so of two processes trying the same id one creates
the instance and the other is refused (the instance's unique (job_name, job_key) constraint,
inside the launch transaction) and tries the next id. No table of its own, no counter row.

Unlike Spring's RunIdIncrementer, nothing of the previous execution's parameters is carried
forward unless named in ``carry`` (stale parameters carried along are a classic surprise).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from batchline.errors import JobInstanceAlreadyExists, LaunchRefused, ParameterError
from batchline.parameters import JobParameter, JobParameters, ParamValue

if TYPE_CHECKING:
    from batchline.job import Job
    from batchline.model import JobExecution
    from batchline.repository.base import JobRepository

RUN_ID = "run.id"
# Racers each take one id; this many refusals in a row means something else is wrong.
_ATTEMPTS = 1000


def launch_next_instance(
    repository: JobRepository,
    job: Job,
    parameters: JobParameters | Mapping[str, ParamValue] | None,
    carry: Iterable[str] = (),
) -> JobExecution:
    """Launch a new instance of ``job`` with the next free ``run.id`` (an identifying int)."""
    given = parameters if isinstance(parameters, JobParameters) else JobParameters(parameters)
    if RUN_ID in given:
        raise ParameterError(
            f"job {job.name!r}: {RUN_ID!r} is chosen by start_next_instance; do not pass it"
        )
    last = repository.last_job_execution(job.name)
    carried: dict[str, ParamValue | JobParameter] = {}
    for name in carry:
        if last is not None and name in last.parameters and name not in given:
            carried[name] = last.parameters.parameter(name)
    base = {**carried, **{n: given.parameter(n) for n in given}}
    run_id = _run_id_of(last) + 1
    for _ in range(_ATTEMPTS):
        params = JobParameters({**base, RUN_ID: run_id})
        job.validate(params)
        try:
            return repository.create_job_execution(
                job.name, params, restartable=job.restartable, new_instance_only=True
            )
        except JobInstanceAlreadyExists:
            run_id += 1  # another launcher took it (or an older instance has it)
    raise LaunchRefused(
        f"job {job.name!r}: no free {RUN_ID!r} after {_ATTEMPTS} tries from {run_id - _ATTEMPTS}"
    )


def _run_id_of(execution: JobExecution | None) -> int:
    value = execution.parameters.get(RUN_ID) if execution is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
