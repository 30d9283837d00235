"""What the engine, the CLI and the web server do with backfills: create, run, resume, stop,
read; each backfill runs in a thread of its own (``BackfillHandle``)."""

from __future__ import annotations

import getpass
import socket
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from batchline.backfill.grid import BackfillState, instance_parameters, read_state
from batchline.backfill.ranges import BackfillRange, parse_range
from batchline.backfill.runner import BackfillRunner
from batchline.backfill.store import ACTIVE, STOPPED, BackfillRecord, BackfillStore
from batchline.errors import ConfigurationError, ParameterError
from batchline.parameters import JobParameters

if TYPE_CHECKING:
    from batchline.backfill.ports import BackfillEngine
    from batchline.job import Job
    from batchline.launching import Launcher, Params

MAX_CONCURRENCY = 256


@dataclass(frozen=True)
class BackfillHandle:
    """A backfill running in a thread of this process: its grid, its end, its stop."""

    id: int
    future: Future[BackfillState]
    engine: BackfillEngine

    def state(self) -> BackfillState:
        """The grid as the repository has it now."""
        return backfill_state(self.engine, self.id)

    def wait(self, timeout: float | None = None) -> BackfillState:
        return self.future.result(timeout)

    def done(self) -> bool:
        return self.future.done()

    def stop(self) -> BackfillRecord:
        return stop_backfill(self.engine, self.id)


def store_of(engine: BackfillEngine) -> BackfillStore:
    bind = getattr(engine.repository, "engine", None)
    if bind is None:
        raise ConfigurationError("backfills are recorded in an SQL job repository")
    return BackfillStore(bind)


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def as_range(values: str | BackfillRange, step: str | None = None) -> BackfillRange:
    return values if isinstance(values, BackfillRange) else parse_range(values, step)


def plan(
    engine: BackfillEngine,
    job: Job | str,
    values: str | BackfillRange,
    *,
    step: str | None = None,
    parameters: Params = None,
    restart_failed: bool = False,
) -> list[tuple[str, str, str]]:
    """What a backfill would do now, value by value: (value, status, action)."""
    resolved = engine.registry.get(job) if isinstance(job, str) else job
    found = as_range(values, step)
    params = _params(parameters, found)
    keys = [instance_parameters(params, found, v) for v in found.values]
    for p in keys:
        resolved.validate(p)
    states = store_of(engine).instances(resolved.name, [p.key for p in keys])
    rows = []
    for value, p in zip(found.values, keys, strict=True):
        state = states.get(p.key)
        status = state.status if state is not None else None
        if status is None:
            action = "run"
        elif status.is_running:
            action = "leave running"
        elif status.value in ("FAILED", "STOPPED"):
            action = "restart" if restart_failed else "skip (use --restart-failed)"
        else:
            action = "skip"
        rows.append((found.text(value), status.value if status else "-", action))
    return rows


def start_backfill(
    engine: BackfillEngine,
    job: Job | str,
    values: str | BackfillRange,
    *,
    step: str | None = None,
    parameters: Params = None,
    concurrency: int = 4,
    on: Launcher | None = None,
    restart_failed: bool = False,
    started_by: str | None = None,
) -> BackfillHandle:
    resolved = engine.registry.get(job) if isinstance(job, str) else job
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ParameterError(f"backfill concurrency {concurrency}: use 1 to {MAX_CONCURRENCY}")
    if on is not None and (engine.repository.url() or "sqlite").startswith("sqlite"):
        raise ConfigurationError(
            f"backfill of {resolved.name!r}: workers need a repository they can reach "
            "(PostgreSQL or MariaDB), not SQLite"
        )
    found = as_range(values, step)
    params = _params(parameters, found)
    for value in found.values:  # every value checked before anything is recorded
        resolved.validate(instance_parameters(params, found, value))
    record = store_of(engine).create(
        resolved.name,
        found,
        params,
        concurrency=concurrency,
        restart_failed=restart_failed,
        started_by=started_by or who(),
        queue_to=getattr(on, "broker", None),
        queue=getattr(on, "queue", None),
    )
    return _run(engine, record, resolved, on, restart_stopped=False)


def resume_backfill(
    engine: BackfillEngine, backfill_id: int, *, on: Launcher | None = None, wait: bool = False
) -> BackfillHandle:
    """Run again what a killed, stopped or failed backfill has not finished (stopped values
    are restarted: the backfill's stop stopped them). Refused (BackfillRunning) while its
    runner's lease holds; ``wait`` waits that lease out first (a runner just killed)."""
    store = store_of(engine)
    record = store.get(backfill_id)
    job = engine.registry.get(record.job_name)
    if on is None and record.queue_to:
        from batchline.remote.launcher import CeleryLauncher

        on = CeleryLauncher(
            record.queue_to,
            queue=record.queue or "batchline",
            lease=engine.lease,
            heartbeat_interval=engine.heartbeat_interval,
        )
    restart_stopped = record.status in (STOPPED, *ACTIVE)
    return _run(engine, record, job, on, restart_stopped=restart_stopped, wait=wait)


def stop_backfill(engine: BackfillEngine, backfill_id: int) -> BackfillRecord:
    return store_of(engine).request_stop(backfill_id, engine.lease)


def backfill_state(engine: BackfillEngine, backfill_id: int) -> BackfillState:
    store = store_of(engine)
    return read_state(store, store.get(backfill_id), engine.lease)


def _params(parameters: Params, values: BackfillRange) -> JobParameters:
    params = parameters if isinstance(parameters, JobParameters) else JobParameters(parameters)
    if values.name in params:
        raise ParameterError(
            f"parameter {values.name!r} is the backfill's range; do not give it as well"
        )
    return params


def _run(
    engine: BackfillEngine,
    record: BackfillRecord,
    job: Job,
    on: Launcher | None,
    *,
    restart_stopped: bool,
    wait: bool = False,
) -> BackfillHandle:
    runner = BackfillRunner(
        engine, store_of(engine), record, job, launcher=on, restart_stopped=restart_stopped
    )
    runner.claim(wait=wait)  # here, so a refusal raises to the caller
    future: Future[BackfillState] = Future()

    def body() -> None:
        try:
            future.set_result(runner.run())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=body, name=f"batchline-backfill-{record.id}", daemon=True).start()
    return BackfillHandle(record.id, future, engine)
