"""The job repository on SQLAlchemy Core: SQLite, PostgreSQL, MySQL/MariaDB.

Costs, which tests count: a launch is a constant number of statements whatever the instance's
history (the instance row points at its last execution); a chunk commit is one statement (the
step execution's UPDATE, which carries counters and context and is refused while the job is
STOPPING), two only when a stop is pending, and one more when a progress sample is due
(every few seconds per running step, ``samples.py``).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection, Engine, RowMapping

from batchline.errors import (
    JobExecutionAlreadyRunning,
    JobExecutionNotRunning,
    LeaseLost,
    NoSuchExecution,
    OptimisticLockingFailure,
    RepositoryError,
)
from batchline.model import (
    COUNTERS,
    ExecutionContext,
    JobExecution,
    JobInstance,
    SkippedItem,
    StepContext,
    StepContribution,
    StepExecution,
    check_status_change,
    utcnow,
)
from batchline.parameters import JobParameters
from batchline.repository import stop_markers, summary
from batchline.repository.columns import (
    CONTEXT_LIMITS,
    DEFAULT_CONTEXT_LIMIT,
    context_json,
    fit_chars,
    fit_text,
)
from batchline.repository.database import READ_ONLY, create_engine, describe, migrate, retrying
from batchline.repository.filters import ProgressSample
from batchline.repository.launch import FINAL, check_launch
from batchline.repository.queries import SqlQueries
from batchline.repository.rows import to_job_execution as _to_job_execution
from batchline.repository.rows import to_step_execution as _to_step_execution
from batchline.repository.samples import DEFAULT_SAMPLE_INTERVAL, Sampler, read_samples
from batchline.repository.schema import (
    execution_parameter,
    job_execution,
    job_instance,
    skipped_item,
    step_context,
    step_execution,
)
from batchline.repository.timeouts import DEFAULT_CONNECT_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT
from batchline.status import BatchStatus
from batchline.transaction import SqlTransactionManager

T = TypeVar("T")

_RUNNING = [s.value for s in BatchStatus if s.is_running]

# The two statements of every chunk commit, built once with bound parameters: building an UPDATE
# from literal values (coercing and cache-keying each one) costs more than executing it.
_STEP_COLUMNS = (
    "status",
    "exit_code",
    "exit_message",
    "context",
    "start_time",
    "end_time",
    "last_updated",
    "version",
    *COUNTERS,
)
_UPDATE_STEP = (
    step_execution.update()
    .where(step_execution.c.id == sa.bindparam("where_id"))
    .where(step_execution.c.version == sa.bindparam("where_version"))
    .values({name: sa.bindparam(name) for name in _STEP_COLUMNS})
)
_JOB_STATUS = sa.select(job_execution.c.status).where(
    job_execution.c.id == sa.bindparam("where_id")
)
# A chunk's progress and its stop check in one statement: the row is updated only while its job
# execution is not STOPPING, so no rows updated means "stop" (or a lost update, told apart by
# an unconditional second try that runs only then).
# Only what a chunk changes: status, exit status and times stay as the step's start set them.
# A job execution's status, its row share-locked until the transaction ends (on SQLite the
# write lock BEGIN IMMEDIATE took does it).
_JOB_STATUS_SHARED = (
    sa.select(job_execution.c.status)
    .where(job_execution.c.id == sa.bindparam("where_id"))
    .with_for_update(read=True)
)
_CHUNK_COLUMNS = ("context", "last_updated", "version", *COUNTERS)
_UPDATE_STEP_UNLESS_STOPPING = (
    step_execution.update()
    .where(step_execution.c.id == sa.bindparam("where_id"))
    .where(step_execution.c.version == sa.bindparam("where_version"))
    .where(
        sa.select(job_execution.c.status)
        .where(job_execution.c.id == sa.bindparam("job_id"))
        .scalar_subquery()
        != BatchStatus.STOPPING.value
    )
    .values({name: sa.bindparam(name) for name in _CHUNK_COLUMNS})
)
_UPDATE_CHUNK = (
    step_execution.update()
    .where(step_execution.c.id == sa.bindparam("where_id"))
    .where(step_execution.c.version == sa.bindparam("where_version"))
    .values({name: sa.bindparam(name) for name in _CHUNK_COLUMNS})
)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


class SqlJobRepository(SqlQueries):
    """A JobRepository on any SQLAlchemy database; ``upgrade=True`` migrates the schema first.

    Given a URL, it creates the engine with these timeouts (see ``create_engine``).
    ``sample_interval``: seconds between two progress samples of a running step (carried by a
    chunk commit, see ``samples.py``); None records none.
    """

    def __init__(
        self,
        engine: Engine | str,
        *,
        upgrade: bool = True,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        statement_timeout: float | None = DEFAULT_STATEMENT_TIMEOUT,
        sample_interval: float | None = DEFAULT_SAMPLE_INTERVAL,
        sample_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = (
            create_engine(
                engine, connect_timeout=connect_timeout, statement_timeout=statement_timeout
            )
            if isinstance(engine, str)
            else engine
        )
        self._reader = self.engine.execution_options(**{READ_ONLY: True})
        url = self.engine.url
        backend = url.get_backend_name()
        self._context_limit = CONTEXT_LIMITS.get(backend, DEFAULT_CONTEXT_LIMIT)
        self._marker_base = stop_markers.marker_base(self.engine)
        self._sampler = Sampler(sample_interval, sample_clock)
        if upgrade:
            migrate(self.engine)

    def __repr__(self) -> str:
        return f"SqlJobRepository({describe(self.engine)!r})"

    def dispose(self) -> None:
        self.engine.dispose()

    def _context(self, context: ExecutionContext, what: str) -> str:
        return context_json(context, self._context_limit, what)

    def url(self) -> str | None:
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            return None  # in memory: no other process sees it
        return str(self.engine.url.render_as_string(hide_password=False))

    def sample_interval(self) -> float | None:
        return self._sampler.interval

    def transaction_manager(self) -> SqlTransactionManager:
        return SqlTransactionManager(self.engine)

    def shares_connection_with(self, other: Any) -> bool:
        return isinstance(other, SqlTransactionManager) and other.engine is self.engine

    # --- transactions ---------------------------------------------------------------------

    def _tx(
        self, fn: Callable[[Connection], T], conn: Connection | None = None, *, read: bool = False
    ) -> T:
        if conn is not None:
            return fn(conn)
        bind = self._reader if read else self.engine

        def attempt() -> T:
            with bind.begin() as own:
                return fn(own)

        try:
            return retrying(attempt)
        except exc.OperationalError as err:
            raise RepositoryError(
                f"job repository {describe(self.engine)} failed: {str(err.orig).strip()}"
            ) from err

    def _read(self, fn: Callable[[Connection], T], conn: Connection | None = None) -> T:
        """A transaction that only reads: on SQLite it takes no write lock, so reading (a
        stop request, ``batchline show``) never waits behind a job's chunk transactions."""
        return self._tx(fn, conn, read=True)

    # --- launching ------------------------------------------------------------------------

    def create_job_execution(
        self,
        job_name: str,
        parameters: JobParameters,
        *,
        restartable: bool = True,
        new_instance_only: bool = False,
    ) -> JobExecution:
        key = parameters.key
        stored = parameters.stored()  # the size limits, before anything is written

        def launch(conn: Connection) -> JobExecution:
            instance_row = self._instance_row(conn, job_name, key)
            if instance_row is None:
                instance_row = self._insert_instance(conn, job_name, key)
            instance = JobInstance(instance_row["id"], job_name, key)
            last_id = instance_row["last_execution_id"]
            last = None
            context = "{}"
            if last_id is not None:
                row = conn.execute(
                    sa.select(job_execution.c.status, job_execution.c.context).where(
                        job_execution.c.id == last_id
                    )
                ).one()
                last = BatchStatus(row.status)
                context = row.context or "{}"  # a restart resumes the job's context too
            abandoned_id = None
            if last is not None and last not in FINAL:
                abandoned_id = conn.execute(
                    sa.select(job_execution.c.id)
                    .where(
                        job_execution.c.job_instance_id == instance.id,
                        job_execution.c.status == BatchStatus.ABANDONED.value,
                    )
                    .limit(1)
                ).scalar()
            check_launch(
                job_name,
                parameters,
                last,
                last_id,
                restartable=restartable,
                new_instance_only=new_instance_only,
                abandoned_id=abandoned_id,
            )
            now = utcnow()
            try:
                new_id = conn.execute(
                    job_execution.insert().values(
                        job_instance_id=instance.id,
                        version=0,
                        status=BatchStatus.STARTING.value,
                        exit_code="UNKNOWN",
                        exit_message="",
                        parameters=stored,
                        context=context,
                        create_time=now,
                        last_updated=now,
                        heartbeat=now,
                        owner=_owner(),
                        running_instance_id=instance.id,
                        job_name=job_name,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            except exc.IntegrityError:
                raise JobExecutionAlreadyRunning(
                    f"job {job_name!r} with {parameters!r} is already running"
                ) from None
            # Compare-and-set on the instance's pointer: a launch that raced with ours and won
            # changed it, and then ours must not run.
            moved = conn.execute(
                job_instance.update()
                .where(job_instance.c.id == instance.id)
                .where(
                    job_instance.c.last_execution_id.is_(None)
                    if last_id is None
                    else job_instance.c.last_execution_id == last_id
                )
                .values(last_execution_id=new_id)
            ).rowcount
            if moved != 1:
                raise JobExecutionAlreadyRunning(
                    f"job {job_name!r} with {parameters!r} was launched by another process"
                )
            rows = summary.parameter_rows(int(new_id), parameters)
            if rows:
                conn.execute(execution_parameter.insert(), rows)
            summary.moved(conn, job_name, None, BatchStatus.STARTING)
            return JobExecution(
                id=int(new_id),
                instance=instance,
                parameters=parameters,
                context=ExecutionContext.from_json(context),
                create_time=now,
                last_updated=now,
            )

        return self._tx(launch)

    def _instance_row(self, conn: Connection, name: str, key: str) -> RowMapping | None:
        return (
            conn.execute(
                sa.select(job_instance.c.id, job_instance.c.last_execution_id).where(
                    job_instance.c.job_name == name, job_instance.c.job_key == key
                )
            )
            .mappings()
            .first()
        )

    def _insert_instance(self, conn: Connection, name: str, key: str) -> RowMapping:
        try:
            with conn.begin_nested():
                conn.execute(
                    job_instance.insert().values(job_name=name, job_key=key, create_time=utcnow())
                )
        except exc.IntegrityError:
            pass  # another launcher created it first: use theirs
        row = self._instance_row(conn, name, key)
        if row is None:
            raise RepositoryError(f"job instance {name!r}/{key} vanished while being created")
        return row

    def get_job_instance(self, job_name: str, parameters: JobParameters) -> JobInstance | None:
        row = self._read(lambda conn: self._instance_row(conn, job_name, parameters.key))
        return JobInstance(row["id"], job_name, parameters.key) if row else None

    # --- job executions -------------------------------------------------------------------

    def update_job_execution(self, execution: JobExecution) -> None:
        def save(conn: Connection) -> None:
            for _ in range(3):
                check_status_change(
                    execution.persisted_status, execution.status, f"job execution {execution.id}"
                )
                finished = not execution.status.is_running
                values: dict[str, Any] = {
                    "status": execution.status.value,
                    "exit_code": fit_chars(execution.exit_status.code, 64),
                    "exit_message": fit_text(execution.exit_status.description),
                    "start_time": execution.start_time,
                    "end_time": execution.end_time,
                    "last_updated": utcnow(),
                    "context": self._context(execution.context, f"job execution {execution.id}"),
                    "version": execution.version + 1,
                }
                if finished:
                    values["running_instance_id"] = None
                updated = conn.execute(
                    job_execution.update()
                    .where(job_execution.c.id == execution.id)
                    .where(job_execution.c.version == execution.version)
                    .values(**values)
                ).rowcount
                if updated == 1:
                    was = execution.persisted_status
                    if was is not execution.status:
                        took = summary.seconds(execution.start_time, execution.end_time)
                        summary.moved(
                            conn,
                            execution.job_name,
                            was,
                            execution.status,
                            None if was.is_running else took,
                            took,
                        )
                    execution.version += 1
                    execution.persisted_status = execution.status
                    if finished:
                        self._end_left_steps(conn, execution)
                        self._clear_stop_marker(execution.id)
                    return
                # Only a stop request writes a running execution's row besides its own thread.
                row = self._job_row(conn, execution.id)
                if BatchStatus(row["status"]) is not BatchStatus.STOPPING:
                    raise OptimisticLockingFailure(
                        f"job execution {execution.id} was changed by someone else "
                        f"(now {row['status']}, version {row['version']})"
                    )
                execution.adopt_stop(row["version"])
            raise OptimisticLockingFailure(f"job execution {execution.id}: repeated lost updates")

        self._tx(save)
        execution.last_updated = utcnow()

    def _end_left_steps(self, conn: Connection, execution: JobExecution) -> None:
        """A job ends only once its steps have: a step row still saying it runs is one whose
        end could not be written (its claim's reply lost, the repository away meanwhile). It
        ends FAILED with the job, carrying the job's cause, never STARTED under an ended job."""
        cause = execution.exit_status.description.strip().splitlines()
        message = (
            f"still recorded running when job execution {execution.id} ended "
            f"{execution.status.value}" + (f": {cause[0]}" if cause else "")
        )
        now = utcnow()
        conn.execute(
            step_execution.update()
            .where(step_execution.c.job_execution_id == execution.id)
            .where(step_execution.c.status.in_(_RUNNING))
            .values(
                status=BatchStatus.FAILED.value,
                exit_code=BatchStatus.FAILED.value,
                exit_message=fit_text(message),
                end_time=now,
                last_updated=now,
                version=step_execution.c.version + 1,
            )
        )

    def save_job_context(self, execution: JobExecution) -> None:
        context = self._context(execution.context, f"job execution {execution.id}")
        self._tx(
            lambda conn: conn.execute(
                job_execution.update()
                .where(job_execution.c.id == execution.id)
                .values(context=context, last_updated=utcnow())
            )
        )
        execution.context.dirty = False

    def _job_row(self, conn: Connection, execution_id: int) -> RowMapping:
        row = (
            conn.execute(
                sa.select(job_execution, job_instance.c.job_key)
                .join(job_instance, job_instance.c.id == job_execution.c.job_instance_id)
                .where(job_execution.c.id == execution_id)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NoSuchExecution(f"no job execution with id {execution_id}")
        return row

    def get_job_execution(self, execution_id: int) -> JobExecution:
        return _to_job_execution(self._read(lambda conn: self._job_row(conn, execution_id)))

    def _executions(self, conn: Connection, where: Any, limit: int) -> list[JobExecution]:
        query = (
            sa.select(job_execution, job_instance.c.job_key)
            .join(job_instance, job_instance.c.id == job_execution.c.job_instance_id)
            .order_by(job_execution.c.id.desc())
            .limit(limit)
        )
        if where is not None:
            query = query.where(where)
        return [_to_job_execution(row) for row in conn.execute(query).mappings()]

    def last_job_execution(self, job_name: str) -> JobExecution | None:
        found = self._read(
            lambda conn: self._executions(conn, job_execution.c.job_name == job_name, 1)
        )
        return found[0] if found else None

    def last_restartable_execution(self, job_name: str) -> JobExecution | None:
        """The newest execution that is its instance's last and did not finish for good."""
        unfinished = [s.value for s in BatchStatus if s not in FINAL]
        where = sa.and_(
            job_execution.c.job_name == job_name,
            job_instance.c.last_execution_id == job_execution.c.id,
            job_execution.c.status.in_(unfinished),
        )
        found = self._read(lambda conn: self._executions(conn, where, 1))
        return found[0] if found else None

    def list_job_executions(
        self, job_name: str | None = None, *, limit: int = 50
    ) -> list[JobExecution]:
        where = job_execution.c.job_name == job_name if job_name else None
        return self._read(lambda conn: self._executions(conn, where, limit))

    def request_stop(self, execution_id: int) -> JobExecution:
        current = self.get_job_execution(execution_id)
        if not current.status.is_running:
            raise JobExecutionNotRunning(
                f"job execution {execution_id} is not running ({current.status.value}); "
                "only a running execution can be stopped"
            )
        if self._marker_base is not None:
            # The job sees this at its next chunk boundary even while it holds the write lock.
            mark = stop_markers.token(execution_id, current.create_time)
            stop_markers.write(self._marker_base, execution_id, mark)

        def stop(conn: Connection) -> RowMapping:
            # One status at a time: the row count then says which one it left (the summary's).
            for was in (BatchStatus.STARTING, BatchStatus.STARTED):
                stopped = conn.execute(
                    job_execution.update()
                    .where(job_execution.c.id == execution_id)
                    .where(job_execution.c.status == was.value)
                    .values(
                        status=BatchStatus.STOPPING.value,
                        version=job_execution.c.version + 1,
                        last_updated=utcnow(),
                    )
                ).rowcount
                if stopped == 1:
                    summary.moved(conn, current.job_name, was, BatchStatus.STOPPING)
                    break
            return self._job_row(conn, execution_id)

        # Ended while we waited (perhaps stopped by the marker): the stop is done, or moot.
        return _to_job_execution(self._tx(stop))

    def stop_signalled(self, job_execution_id: int) -> bool:
        base = self._marker_base
        return base is not None and stop_markers.signalled(
            base, job_execution_id, lambda: self._marker_token(job_execution_id)
        )

    def _marker_token(self, execution_id: int) -> str | None:
        created = self._read(
            lambda conn: conn.execute(
                sa.select(job_execution.c.create_time).where(job_execution.c.id == execution_id)
            ).scalar_one_or_none()
        )
        return stop_markers.token(execution_id, created) if created is not None else None

    def _clear_stop_marker(self, execution_id: int) -> None:
        stop_markers.clear(self._marker_base, [execution_id])

    def stop_requested(self, job_execution_id: int, conn: Any = None) -> bool:
        status = self._read(
            lambda c: c.execute(_JOB_STATUS, {"where_id": job_execution_id}).scalar_one(),
            conn,
        )
        return bool(status == BatchStatus.STOPPING.value)

    def _finish_dead(
        self,
        execution_id: int,
        target: BatchStatus,
        message: str,
        stale_before: dt.datetime | None = None,
        *,
        unclaimed: bool = False,
    ) -> JobExecution:
        """Move a non-running (or dead) execution and its running steps to a final status.

        ``stale_before``: only if its last heartbeat is older (the same UPDATE checks it, so a
        process that renewed its lease meanwhile is never declared dead). ``unclaimed``: only
        a queued execution still STARTING past its claim deadline (a worker's claim, which
        bumps the version, wins the race).
        """

        def finish(conn: Connection) -> RowMapping:
            row = self._job_row(conn, execution_id)
            current = BatchStatus(row["status"])
            if unclaimed:
                deadline = row["claim_deadline"]
                if current is not BatchStatus.STARTING or deadline is None:
                    raise JobExecutionAlreadyRunning(
                        f"job execution {execution_id} is {current.value}: a worker claimed it"
                    )
                if deadline >= utcnow():
                    raise JobExecutionAlreadyRunning(
                        f"job execution {execution_id} is queued and waits for a worker's "
                        f"claim until {deadline:%Y-%m-%d %H:%M:%S} UTC"
                    )
            if current is not target:
                current.check_transition(target, what=f"job execution {execution_id}")
            now = utcnow()
            update = (
                job_execution.update()
                .where(job_execution.c.id == execution_id)
                .where(job_execution.c.version == row["version"])
            )
            if stale_before is not None:
                update = update.where(
                    sa.or_(
                        job_execution.c.heartbeat.is_(None),
                        job_execution.c.heartbeat < stale_before,
                    )
                )
            done = conn.execute(
                update.values(
                    status=target.value,
                    exit_code=target.value,
                    exit_message=fit_text(message),
                    end_time=row["end_time"] or now,
                    last_updated=now,
                    version=row["version"] + 1,
                    running_instance_id=None,
                )
            ).rowcount
            if done != 1:
                fresh = self._job_row(conn, execution_id)
                beat = fresh["heartbeat"]
                if stale_before is not None and beat is not None and beat >= stale_before:
                    raise JobExecutionAlreadyRunning(
                        f"job execution {execution_id} renewed its lease "
                        f"({beat:%Y-%m-%d %H:%M:%S} UTC): it is alive"
                    )
                raise OptimisticLockingFailure(
                    f"job execution {execution_id} changed while being marked {target.value}"
                )
            summary.moved(
                conn,
                row["job_name"],
                current,
                target,
                summary.seconds(row["start_time"], row["end_time"]),
                summary.seconds(row["start_time"], row["end_time"] or now),
            )
            conn.execute(
                step_execution.update()
                .where(step_execution.c.job_execution_id == execution_id)
                .where(step_execution.c.status.in_([*_RUNNING, BatchStatus.UNKNOWN.value]))
                .values(
                    status=target.value,
                    exit_code=target.value,
                    exit_message=fit_text(message),
                    end_time=now,
                    last_updated=now,
                    version=step_execution.c.version + 1,
                )
            )
            return self._job_row(conn, execution_id)

        ended = _to_job_execution(self._tx(finish))
        self._clear_stop_marker(execution_id)  # recovered or abandoned: its stop is moot
        return ended

    def mark_abandoned(self, execution_id: int) -> JobExecution:
        return self._finish_dead(execution_id, BatchStatus.ABANDONED, "abandoned by an operator")

    def mark_failed(
        self,
        execution_id: int,
        message: str,
        *,
        stale_before: dt.datetime | None = None,
        unclaimed: bool = False,
    ) -> JobExecution:
        return self._finish_dead(
            execution_id, BatchStatus.FAILED, message, stale_before, unclaimed=unclaimed
        )

    def set_claim_deadline(self, execution_id: int, deadline: dt.datetime) -> None:
        def write(conn: Connection) -> None:
            conn.execute(
                job_execution.update()
                .where(job_execution.c.id == execution_id)
                .where(job_execution.c.status == BatchStatus.STARTING.value)
                .values(claim_deadline=deadline)
            )

        self._tx(write)

    def claim_deadline(self, execution_id: int) -> dt.datetime | None:
        deadline = self._read(
            lambda conn: conn.execute(
                sa.select(job_execution.c.claim_deadline).where(job_execution.c.id == execution_id)
            ).scalar_one_or_none()
        )
        return deadline if isinstance(deadline, dt.datetime) else None

    def heartbeat(self, execution_ids: Sequence[int], conn: Any = None) -> list[int]:
        if not execution_ids:
            return []
        ids = list(execution_ids)
        running = job_execution.c.status.in_(_RUNNING)

        def beat(conn: Connection) -> list[int]:
            touched = conn.execute(
                job_execution.update()
                .where(job_execution.c.id.in_(ids), running)
                .values(heartbeat=utcnow())
            ).rowcount
            if len(ids) == 1:  # a chunk's own beat: one statement (rows matched, every dialect)
                return ids if touched == 1 else []
            held = sa.select(job_execution.c.id).where(job_execution.c.id.in_(ids), running)
            return sorted(int(i) for i in conn.execute(held).scalars())

        return self._tx(beat, conn)

    def job_statuses(self, execution_ids: Sequence[int]) -> dict[int, BatchStatus]:
        ids = list(execution_ids)
        rows = self._read(
            lambda conn: conn.execute(
                sa.select(job_execution.c.id, job_execution.c.status).where(
                    job_execution.c.id.in_(ids)
                )
            ).all()
        )
        return {int(i): BatchStatus(status) for i, status in rows}

    def heartbeat_of(self, execution_id: int) -> dt.datetime | None:
        beat = self._read(
            lambda conn: conn.execute(
                sa.select(job_execution.c.heartbeat).where(job_execution.c.id == execution_id)
            ).scalar_one_or_none()
        )
        return beat if isinstance(beat, dt.datetime) else None

    def stale_executions(self, older_than: dt.datetime) -> list[JobExecution]:
        waiting = sa.and_(
            job_execution.c.status == BatchStatus.STARTING.value,
            job_execution.c.claim_deadline >= utcnow(),
        )
        where = sa.and_(
            job_execution.c.status.in_(_RUNNING),
            job_execution.c.heartbeat < older_than,
            sa.not_(sa.and_(job_execution.c.claim_deadline.is_not(None), waiting)),
        )
        return self._read(lambda conn: self._executions(conn, where, 1000))

    # --- steps ----------------------------------------------------------------------------

    def get_step_context(self, job_instance_id: int, step_name: str) -> StepContext | None:
        last = step_execution.alias("last")
        query = (
            sa.select(
                step_context.c.start_count,
                step_context.c.last_step_execution_id,
                last.c.status,
                last.c.context,
            )
            .select_from(
                step_context.outerjoin(last, last.c.id == step_context.c.last_step_execution_id)
            )
            .where(
                step_context.c.job_instance_id == job_instance_id,
                step_context.c.step_name == step_name,
            )
        )
        row = self._read(lambda conn: conn.execute(query).mappings().first())
        if row is None:
            return None
        return StepContext(
            job_instance_id=job_instance_id,
            step_name=step_name,
            start_count=row["start_count"],
            last_step_execution_id=row["last_step_execution_id"],
            last_status=BatchStatus(row["status"]) if row["status"] else None,
            context=ExecutionContext.from_json(row["context"]),
        )

    def create_step_execution(
        self, job_execution: JobExecution, step_name: str, previous: StepContext | None
    ) -> StepExecution:
        # A restart resumes from the context of the execution that did not complete.
        resume = previous is not None and previous.last_status is not BatchStatus.COMPLETED
        context = previous.context.copy() if previous and resume else ExecutionContext()
        now = utcnow()

        def create(conn: Connection) -> int:
            # The fence: a step is created only under a running job execution, whose row stays
            # share-locked until this commits (a recover marking it FAILED waits, then ends
            # this step too). A process that lost its execution (frozen, thawed, replaced by a
            # restart) creates nothing.
            status = conn.execute(
                _JOB_STATUS_SHARED, {"where_id": job_execution.id}
            ).scalar_one_or_none()
            if status not in _RUNNING:
                raise LeaseLost(
                    f"job execution {job_execution.id} is {status or 'gone'}: step "
                    f"{step_name!r} is not created (its process lost it to a recover or a "
                    "restart)"
                )
            step_id = conn.execute(
                step_execution.insert().values(
                    job_execution_id=job_execution.id,
                    step_name=step_name,
                    version=0,
                    status=BatchStatus.STARTING.value,
                    exit_code="EXECUTING",
                    exit_message="",
                    context=self._context(context, f"step {step_name!r}"),
                    start_time=now,
                    last_updated=now,
                    **dict.fromkeys(COUNTERS, 0),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if previous is None:
                conn.execute(
                    step_context.insert().values(
                        job_instance_id=job_execution.instance.id,
                        step_name=step_name,
                        start_count=1,
                        last_step_execution_id=step_id,
                        last_updated=now,
                    )
                )
            else:
                conn.execute(
                    step_context.update()
                    .where(
                        step_context.c.job_instance_id == job_execution.instance.id,
                        step_context.c.step_name == step_name,
                    )
                    .values(
                        start_count=step_context.c.start_count + 1,
                        last_step_execution_id=step_id,
                        last_updated=now,
                    )
                )
            return int(step_id)

        step_id = self._tx(create)
        self._sampler.started(step_id)
        return StepExecution(
            id=step_id,
            job_execution_id=job_execution.id,
            step_name=step_name,
            context=context,
            start_time=now,
            last_updated=now,
            job_execution=job_execution,
        )

    def update_step_execution(self, step_execution_: StepExecution, conn: Any = None) -> None:
        se = step_execution_
        values = _step_values(se, self._context(se.context, _what(se)))
        # The save that ends the step carries its last sample: its totals.
        ending = not se.status.is_running and se.persisted_status.is_running
        sample = ending and self._sampler.ended(se.id)

        def save(c: Connection) -> int:
            updated = int(c.execute(_UPDATE_STEP, values).rowcount)
            if sample and updated == 1:
                self._sampler.write(c, se.id, se.job_execution_id, values["last_updated"], values)
            return updated

        self._saved(se, values, self._tx(save, conn))

    def save_chunk_progress(
        self, step_execution_: StepExecution, contribution: StepContribution, conn: Any = None
    ) -> bool:
        """Save the step execution as the chunk leaves it; True when the job is STOPPING.

        One statement when no stop is pending, two when one is. The StepExecution itself is
        left alone: the caller applies the contribution once the chunk's transaction commits.
        """
        se = step_execution_
        values = _chunk_values(se, contribution, self._context(contribution.context, _what(se)))
        values["job_id"] = se.job_execution_id
        # Decided once, outside the transaction: a retried transaction still carries it.
        sample = self._sampler.due(se.id)

        def save(c: Connection) -> bool:
            stopping = c.execute(_UPDATE_STEP_UNLESS_STOPPING, values).rowcount != 1
            if stopping and c.execute(_UPDATE_CHUNK, values).rowcount != 1:
                raise _lost_update(se)
            if sample:  # every few seconds: one more statement in the chunk's transaction
                self._sampler.write(c, se.id, se.job_execution_id, utcnow(), values)
            return stopping

        return self._tx(save, conn)

    def _saved(self, se: StepExecution, values: dict[str, Any], updated: int) -> None:
        if updated != 1:
            raise _lost_update(se)
        se.version = values["version"]
        se.last_updated = values["last_updated"]
        se.persisted_status = se.status

    def reoffer_step_execution(self, step_execution_id: int, message: str) -> bool:
        """A claimed step execution whose runner is gone goes back to STARTING at a new
        version (the old runner's writes are refused), for another runner to claim; False
        when it had already ended."""
        touched = self._tx(
            lambda conn: (
                conn.execute(
                    step_execution.update()
                    .where(step_execution.c.id == step_execution_id)
                    .where(step_execution.c.status == BatchStatus.STARTED.value)
                    .values(
                        status=BatchStatus.STARTING.value,
                        exit_message=fit_text(message),
                        last_updated=utcnow(),
                        version=step_execution.c.version + 1,
                    )
                ).rowcount
            )
        )
        return bool(touched == 1)

    def step_heartbeat(self, step_execution_id: int) -> bool:
        touched = self._tx(
            lambda conn: (
                conn.execute(
                    step_execution.update()
                    .where(step_execution.c.id == step_execution_id)
                    .where(step_execution.c.status.in_(_RUNNING))
                    .values(last_updated=utcnow())
                ).rowcount
            )
        )
        return bool(touched == 1)

    def step_executions(self, job_execution_id: int) -> list[StepExecution]:
        rows = self._read(
            lambda conn: (
                conn.execute(
                    sa.select(step_execution)
                    .where(step_execution.c.job_execution_id == job_execution_id)
                    .order_by(step_execution.c.id)
                )
                .mappings()
                .all()
            )
        )
        return [_to_step_execution(row) for row in rows]

    def last_step_executions(
        self, job_instance_id: int, step_names: Sequence[str]
    ) -> dict[str, StepExecution]:
        """The last execution of each named step in the instance, whichever job execution ran
        it (one query: a partitioned step reads all its partitions at once)."""
        if not step_names:
            return {}
        query = (
            sa.select(step_execution)
            .select_from(
                step_context.join(
                    step_execution, step_execution.c.id == step_context.c.last_step_execution_id
                )
            )
            .where(
                step_context.c.job_instance_id == job_instance_id,
                step_context.c.step_name.in_(list(step_names)),
            )
        )
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        return {row["step_name"]: _to_step_execution(row) for row in rows}

    def fail_step_execution(
        self,
        step_execution_id: int,
        message: str,
        *,
        version: int | None = None,
        written: int | None = None,
    ) -> bool:
        """Mark FAILED a step execution whose runner is gone (a killed worker process) while
        its row still says it runs; False when it had already ended. ``version``: only while
        the row is at that version. ``written``: the version the caller wrote last; the row may
        also be one further, STARTED or STOPPING, when the caller's own commit landed and its
        reply was lost. Either way a process whose write failed never fails a row that a
        manager has offered again (STARTING, one further) or another worker claimed since."""
        now = utcnow()
        col = step_execution.c
        where = [col.id == step_execution_id, col.status.in_(_RUNNING)]
        if version is not None:
            where.append(col.version == version)
        if written is not None:
            mine = (BatchStatus.STARTED.value, BatchStatus.STOPPING.value)
            where.append(
                sa.or_(
                    col.version == written,
                    sa.and_(col.version == written + 1, col.status.in_(mine)),
                )
            )
        updated = self._tx(
            lambda conn: (
                conn.execute(
                    step_execution.update()
                    .where(*where)
                    .values(
                        status=BatchStatus.FAILED.value,
                        exit_code=BatchStatus.FAILED.value,
                        exit_message=fit_text(message),
                        end_time=now,
                        last_updated=now,
                        version=step_execution.c.version + 1,
                    )
                ).rowcount
            )
        )
        return bool(updated == 1)

    # --- skipped items -----------------------------------------------------------------------

    def record_skips(self, skips: Sequence[SkippedItem], conn: Any = None) -> None:
        """Insert skip records, in the chunk's transaction when ``conn`` is given."""
        if not skips:
            return
        rows = [
            {
                "step_execution_id": s.step_execution_id,
                "job_execution_id": s.job_execution_id,
                "phase": s.phase,
                "position": None if s.position is None else fit_chars(str(s.position), 200),
                "item": None if s.item is None else fit_text(s.item),
                "error_type": fit_chars(s.error_type, 200),
                "error_message": fit_text(s.error_message),
                "create_time": s.create_time,
            }
            for s in skips
        ]
        self._tx(lambda c: c.execute(skipped_item.insert(), rows), conn)

    def skipped_items(
        self, job_execution_id: int, *, step_name: str | None = None, limit: int = 1000
    ) -> list[SkippedItem]:
        query = (
            sa.select(skipped_item, step_execution.c.step_name)
            .join(step_execution, step_execution.c.id == skipped_item.c.step_execution_id)
            .where(skipped_item.c.job_execution_id == job_execution_id)
            .order_by(skipped_item.c.id)
            .limit(limit)
        )
        if step_name is not None:
            query = query.where(step_execution.c.step_name == step_name)
        rows = self._read(lambda conn: conn.execute(query).mappings().all())
        return [
            SkippedItem(
                id=row["id"],
                step_execution_id=row["step_execution_id"],
                job_execution_id=row["job_execution_id"],
                phase=row["phase"],
                position=row["position"],
                item=row["item"],
                error_type=row["error_type"],
                error_message=row["error_message"],
                create_time=row["create_time"],
                step_name=row["step_name"],
            )
            for row in rows
        ]

    def progress_samples(
        self, job_execution_id: int, *, limit: int = 10_000
    ) -> list[ProgressSample]:
        """The execution's progress samples in the order taken (the newest ``limit``)."""
        return self._read(lambda conn: read_samples(conn, job_execution_id, limit))

    def count_skipped(self, job_execution_id: int) -> dict[str, int]:
        """Skips of a job execution by phase."""
        rows = self._read(
            lambda conn: conn.execute(
                sa.select(skipped_item.c.phase, sa.func.count())
                .where(skipped_item.c.job_execution_id == job_execution_id)
                .group_by(skipped_item.c.phase)
            ).all()
        )
        return {str(phase): int(count) for phase, count in rows}


def _lost_update(se: StepExecution) -> OptimisticLockingFailure:
    return OptimisticLockingFailure(
        f"step execution {se.step_name}#{se.id} was changed by someone else "
        f"(expected version {se.version})"
    )


def _what(se: StepExecution) -> str:
    return f"step execution {se.step_name}#{se.id}"


def _chunk_values(
    se: StepExecution, contribution: StepContribution, context: str
) -> dict[str, Any]:
    """What a chunk commit changes, with the row's id and expected version."""
    return {
        "context": context,
        "last_updated": contribution.last_updated,
        "version": se.version + 1,
        **contribution.counters_after(se),
        "where_id": se.id,
        "where_version": se.version,
    }


def _step_values(se: StepExecution, context: str) -> dict[str, Any]:
    check_status_change(se.persisted_status, se.status, _what(se))
    return {
        "context": context,
        "last_updated": utcnow(),
        "version": se.version + 1,
        **se.counters(),
        "where_id": se.id,
        "where_version": se.version,
        "status": se.status.value,
        "exit_code": fit_chars(se.exit_status.code, 64),
        "exit_message": fit_text(se.exit_status.description),
        "start_time": se.start_time,
        "end_time": se.end_time,
    }
