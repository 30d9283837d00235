"""The launch rules: whether an instance may run now, given how its last execution ended.

A pure function of the last execution's status, so every repository implementation applies the
same rules (the SQL store calls it inside its launch transaction):

- no execution yet: start (unless a trigger asked for a first execution only and there is one);
- running (STARTING, STARTED, STOPPING): refused, it is already running;
- UNKNOWN: refused until an operator abandons it or ``recover`` marks it FAILED;
- COMPLETED or ABANDONED: the instance is done; new identifying parameters make a new one;
- any execution of the instance ABANDONED, even an older one: done too (as in Spring Batch, an
  abandoned execution makes its instance non-restartable);
- FAILED or STOPPED: a restart, if the job is restartable.
"""

from __future__ import annotations

from batchline.errors import (
    JobExecutionAlreadyRunning,
    JobInstanceAlreadyComplete,
    JobInstanceAlreadyExists,
    JobRestartRefused,
)
from batchline.parameters import JobParameters
from batchline.status import BatchStatus

# Statuses after which an instance never runs again.
FINAL = frozenset({BatchStatus.COMPLETED, BatchStatus.ABANDONED})
# Statuses a restart resumes from.
RESTARTABLE = frozenset({BatchStatus.FAILED, BatchStatus.STOPPED})


def check_launch(
    job_name: str,
    parameters: JobParameters,
    last: BatchStatus | None,
    last_id: int | None,
    *,
    restartable: bool = True,
    new_instance_only: bool = False,
    abandoned_id: int | None = None,
) -> None:
    """Raise the LaunchRefused that says why the instance may not run now; None if it may.
    ``abandoned_id``: an execution of the instance that was abandoned, if any."""
    if last is None:
        return
    what = f"job {job_name!r} with {parameters!r}"
    if new_instance_only:
        raise JobInstanceAlreadyExists(f"{what} has run before (execution {last_id})")
    if last.is_running:
        raise JobExecutionAlreadyRunning(
            f"{what} is already running (execution {last_id}, {last.value})"
        )
    if last is BatchStatus.UNKNOWN:
        raise JobRestartRefused(
            f"{what}: last execution {last_id} is UNKNOWN; abandon or recover it first"
        )
    if last in FINAL:
        raise JobInstanceAlreadyComplete(
            f"{what} {'completed' if last is BatchStatus.COMPLETED else 'was abandoned'}"
            f" (execution {last_id}); change an identifying parameter to start a new instance"
        )
    if abandoned_id is not None:
        raise JobInstanceAlreadyComplete(
            f"{what} was abandoned (execution {abandoned_id}); change an identifying parameter"
            " to start a new instance"
        )
    if not restartable:
        raise JobRestartRefused(f"{what} is not restartable (execution {last_id} {last.value})")
