"""Backfills in the job repository (``batch_backfill``): what was asked, who runs it, its state.

Only the process that claimed a backfill (``owner``) writes its status, except a stop request
(RUNNING -> STOPPING) and the stop of a backfill nobody runs. A claim is a compare-and-set on
the row: a backfill whose runner's heartbeat is younger than the lease cannot be claimed, so a
resume never runs beside a live runner. The grid is not stored: it is read from the job's
instances (``cells``), whose launch rules already say what ran.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batchline.backfill.ranges import BackfillRange, parse
from batchline.errors import BackfillRunning, NoSuchBackfill
from batchline.model import utcnow
from batchline.parameters import JobParameters
from batchline.repository.columns import fit_text
from batchline.repository.database import READ_ONLY
from batchline.repository.schema import backfill, job_execution, job_instance
from batchline.status import BatchStatus

PENDING, RUNNING, STOPPING = "PENDING", "RUNNING", "STOPPING"
STOPPED, COMPLETED, FAILED = "STOPPED", "COMPLETED", "FAILED"
ACTIVE = (RUNNING, STOPPING)
INTERRUPTED = "INTERRUPTED"  # shown, never stored: RUNNING with a heartbeat past its lease
KEYS_PER_QUERY = 500  # instance keys in one IN list
RECOVERED = "recovered"  # how Engine.recover's exit messages begin


@dataclass(frozen=True)
class BackfillRecord:
    """One backfill as the repository holds it."""

    id: int
    job_name: str
    range_kind: str
    range_spec: str
    step: str | None
    parameters: JobParameters
    concurrency: int
    restart_failed: bool
    queue_to: str | None
    queue: str | None
    status: str
    started_by: str
    owner: str | None
    create_time: dt.datetime
    end_time: dt.datetime | None
    heartbeat: dt.datetime | None
    version: int

    def values(self) -> BackfillRange:
        return parse(self.range_kind, self.range_spec, self.step)

    def shown_status(self, lease: float, now: dt.datetime | None = None) -> str:
        """The status, or INTERRUPTED for one whose runner stopped beating (killed)."""
        if self.status in ACTIVE and self.stale(lease, now):
            return INTERRUPTED
        return self.status

    def stale(self, lease: float, now: dt.datetime | None = None) -> bool:
        now = now or utcnow()
        return self.heartbeat is None or self.heartbeat < now - dt.timedelta(seconds=lease)

    def describe_range(self) -> str:
        return f"{self.range_spec} step {self.step}" if self.step else self.range_spec


@dataclass(frozen=True)
class InstanceState:
    """A value's instance as the repository holds it: its newest execution."""

    execution_id: int | None
    status: BatchStatus | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    heartbeat: dt.datetime | None
    exit_message: str = ""

    @property
    def interrupted(self) -> bool:
        """FAILED because its process died (``Engine.recover``), not by its job's own fault:
        a backfill killed between recovering an execution and restarting it finds it so."""
        return self.status is BatchStatus.FAILED and self.exit_message.startswith(RECOVERED)


class BackfillStore:
    """Reads and writes ``batch_backfill`` on the repository's SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})

    def create(
        self,
        job_name: str,
        values: BackfillRange,
        parameters: JobParameters,
        *,
        concurrency: int,
        restart_failed: bool,
        started_by: str,
        queue_to: str | None = None,
        queue: str | None = None,
    ) -> BackfillRecord:
        row = {
            "job_name": job_name,
            "range_kind": values.kind,
            "range_spec": fit_text(values.spec),
            "step": values.step,
            "parameters": json.dumps(parameters.to_json(), sort_keys=True),
            "concurrency": concurrency,
            "restart_failed": int(restart_failed),
            "queue_to": queue_to,
            "queue": queue,
            "status": PENDING,
            "started_by": started_by[:200],
            "create_time": utcnow(),
            "version": 0,
        }
        with self.engine.begin() as conn:
            new_id = conn.execute(backfill.insert().values(**row)).inserted_primary_key[0]  # type: ignore[index]
        return self.get(int(new_id))

    def get(self, backfill_id: int) -> BackfillRecord:
        with self._reader.connect() as conn:
            row = conn.execute(sa.select(backfill).where(backfill.c.id == backfill_id)).first()
        if row is None:
            raise NoSuchBackfill(f"no backfill with id {backfill_id}")
        return _record(row._mapping)

    def list(
        self, job_name: str | None = None, *, statuses: Iterable[str] = (), limit: int = 50
    ) -> list[BackfillRecord]:
        """Newest first."""
        query = sa.select(backfill).order_by(backfill.c.id.desc()).limit(limit)
        if job_name is not None:
            query = query.where(backfill.c.job_name == job_name)
        wanted = list(statuses)
        if wanted:
            query = query.where(backfill.c.status.in_(wanted))
        with self._reader.connect() as conn:
            return [_record(r._mapping) for r in conn.execute(query)]

    def claim(self, backfill_id: int, owner: str, lease: float) -> BackfillRecord:
        """Make ``owner`` the backfill's runner: refused (BackfillRunning) while another
        runner's heartbeat is younger than ``lease``."""
        record = self.get(backfill_id)
        now = utcnow()
        free = sa.or_(
            backfill.c.status.not_in(ACTIVE),
            backfill.c.heartbeat.is_(None),
            backfill.c.heartbeat < now - dt.timedelta(seconds=lease),
            backfill.c.owner == owner,
        )
        with self.engine.begin() as conn:
            done = conn.execute(
                backfill.update()
                .where(backfill.c.id == backfill_id, backfill.c.version == record.version, free)
                .values(
                    status=RUNNING,
                    owner=owner,
                    heartbeat=now,
                    end_time=None,
                    version=record.version + 1,
                )
            ).rowcount
        if done != 1:
            fresh = self.get(backfill_id)
            raise BackfillRunning(
                f"backfill {backfill_id} is {fresh.status} in {fresh.owner} (heartbeat "
                f"{fresh.heartbeat:%Y-%m-%d %H:%M:%S} UTC, lease {lease:g}s)"
                if fresh.heartbeat is not None
                else f"backfill {backfill_id} changed while being claimed"
            )
        return self.get(backfill_id)

    def beat(self, backfill_id: int, owner: str) -> str | None:
        """Renew the owner's lease; the status (RUNNING, or STOPPING when a stop was asked),
        None when the backfill is no longer this owner's."""
        with self.engine.begin() as conn:
            done = conn.execute(
                backfill.update()
                .where(
                    backfill.c.id == backfill_id,
                    backfill.c.owner == owner,
                    backfill.c.status.in_(ACTIVE),
                )
                .values(heartbeat=utcnow())
            ).rowcount
            if done != 1:
                return None
            status = conn.execute(
                sa.select(backfill.c.status).where(backfill.c.id == backfill_id)
            ).scalar_one()
        return str(status)

    def request_stop(self, backfill_id: int, lease: float) -> BackfillRecord:
        """RUNNING -> STOPPING (its runner stops its executions and launches nothing more); a
        backfill nobody runs (pending, or its runner dead) is STOPPED at once."""
        record = self.get(backfill_id)
        now = utcnow()
        if record.status in ACTIVE and not record.stale(lease, now):
            target, where = STOPPING, backfill.c.status == RUNNING
        elif record.status in (PENDING, *ACTIVE):
            target, where = STOPPED, backfill.c.version == record.version
        else:
            return record
        with self.engine.begin() as conn:
            conn.execute(
                backfill.update()
                .where(backfill.c.id == backfill_id, where)
                .values(
                    status=target,
                    version=backfill.c.version + 1,
                    end_time=now if target == STOPPED else None,
                )
            )
        return self.get(backfill_id)

    def finish(self, backfill_id: int, owner: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                backfill.update()
                .where(backfill.c.id == backfill_id, backfill.c.owner == owner)
                .values(status=status, end_time=utcnow(), version=backfill.c.version + 1)
            )

    def instances(self, job_name: str, keys: Sequence[str]) -> dict[str, InstanceState]:
        """The newest execution of each instance of ``job_name`` among ``keys`` that exists."""
        found: dict[str, InstanceState] = {}
        e = job_execution
        with self._reader.connect() as conn:
            for start in range(0, len(keys), KEYS_PER_QUERY):
                part = list(keys[start : start + KEYS_PER_QUERY])
                query = (
                    sa.select(
                        job_instance.c.job_key,
                        e.c.id,
                        e.c.status,
                        e.c.start_time,
                        e.c.end_time,
                        e.c.heartbeat,
                        e.c.exit_message,
                    )
                    .select_from(
                        job_instance.outerjoin(e, e.c.id == job_instance.c.last_execution_id)
                    )
                    .where(job_instance.c.job_name == job_name, job_instance.c.job_key.in_(part))
                )
                for r in conn.execute(query):
                    found[r.job_key] = InstanceState(
                        r.id,
                        BatchStatus(r.status) if r.status else None,
                        r.start_time,
                        r.end_time,
                        r.heartbeat,
                        r.exit_message or "",
                    )
        return found


def _record(row: sa.RowMapping) -> BackfillRecord:
    return BackfillRecord(
        id=int(row["id"]),
        job_name=row["job_name"],
        range_kind=row["range_kind"],
        range_spec=row["range_spec"],
        step=row["step"],
        parameters=JobParameters.from_json(json.loads(row["parameters"])),
        concurrency=int(row["concurrency"]),
        restart_failed=bool(row["restart_failed"]),
        queue_to=row["queue_to"],
        queue=row["queue"],
        status=row["status"],
        started_by=row["started_by"],
        owner=row["owner"],
        create_time=row["create_time"],
        end_time=row["end_time"],
        heartbeat=row["heartbeat"],
        version=int(row["version"]),
    )
