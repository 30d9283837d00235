"""Alerts in the repository: the executions to judge, and the claim of each (execution, kind).

The claim is an INSERT under a unique constraint, made before sending: whoever inserts it
sends; a second server's insert fails and it sends nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Engine

from batchline.model import utcnow
from batchline.repository.columns import fit_chars, fit_text
from batchline.repository.database import READ_ONLY
from batchline.repository.schema import alert_sent, job_execution, job_instance, skipped_item
from batchline.status import BatchStatus

CLAIMED, SENT, FAILED = "claimed", "sent", "failed"
_RUNNING = [s.value for s in BatchStatus if s.is_running]
_USUAL_RUNS = 20  # completed executions whose mean is a job's usual duration


@dataclass(frozen=True)
class Watched:
    id: int
    job_name: str
    status: str
    exit_code: str
    exit_message: str
    start_time: dt.datetime | None
    end_time: dt.datetime | None


class AlertStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})
        self.claimant = fit_chars(f"{socket.gethostname()}:{os.getpid()}", 200)

    def executions_from(self, first_id: int) -> list[Watched]:
        """Executions with an id from ``first_id`` on (ended or running), oldest first."""
        query = (
            sa.select(
                job_execution.c.id,
                job_instance.c.job_name,
                job_execution.c.status,
                job_execution.c.exit_code,
                job_execution.c.exit_message,
                job_execution.c.start_time,
                job_execution.c.end_time,
            )
            .join(job_instance, job_instance.c.id == job_execution.c.job_instance_id)
            .where(job_execution.c.id >= first_id)
            .order_by(job_execution.c.id)
        )
        with self._reader.connect() as conn:
            return [Watched(**dict(r)) for r in conn.execute(query).mappings()]

    def first_unfinished_id(self) -> int:
        """Where to watch from: the oldest running execution, or the next id to come."""
        with self._reader.connect() as conn:
            running = conn.execute(
                sa.select(sa.func.min(job_execution.c.id)).where(
                    job_execution.c.status.in_(_RUNNING)
                )
            ).scalar()
            newest = conn.execute(sa.select(sa.func.max(job_execution.c.id))).scalar()
        return int(running) if running is not None else int(newest or 0) + 1

    def claimed(self, execution_ids: list[int]) -> set[tuple[int, str]]:
        if not execution_ids:
            return set()
        query = sa.select(alert_sent.c.job_execution_id, alert_sent.c.kind).where(
            alert_sent.c.job_execution_id.in_(execution_ids)
        )
        with self._reader.connect() as conn:
            return {(int(i), str(k)) for i, k in conn.execute(query)}

    def claim(self, execution_id: int, kind: str) -> bool:
        """True when this process now owns the alert (and must send it)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    alert_sent.insert().values(
                        job_execution_id=execution_id,
                        kind=kind,
                        claim_time=utcnow(),
                        claimed_by=self.claimant,
                        outcome=CLAIMED,
                        detail="",
                    )
                )
        except exc.IntegrityError:
            return False
        return True

    def record(self, execution_id: int, kind: str, outcome: str, detail: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                alert_sent.update()
                .where(alert_sent.c.job_execution_id == execution_id, alert_sent.c.kind == kind)
                .values(outcome=outcome, detail=fit_text(detail[:2000]))
            )

    def skip_count(self, execution_id: int) -> int:
        query = sa.select(sa.func.count()).where(skipped_item.c.job_execution_id == execution_id)
        with self._reader.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def usual_seconds(self, job_name: str) -> float | None:
        """The mean duration of the job's last completed executions, None before the first."""
        query = (
            sa.select(job_execution.c.start_time, job_execution.c.end_time)
            .join(job_instance, job_instance.c.id == job_execution.c.job_instance_id)
            .where(
                job_instance.c.job_name == job_name,
                job_execution.c.status == BatchStatus.COMPLETED.value,
            )
            .order_by(job_execution.c.id.desc())
            .limit(_USUAL_RUNS)
        )
        with self._reader.connect() as conn:
            runs = [
                (end - start).total_seconds() for start, end in conn.execute(query) if start and end
            ]
        return sum(runs) / len(runs) if runs else None

    def outcomes(self, execution_id: int) -> dict[str, str]:
        query = sa.select(alert_sent.c.kind, alert_sent.c.outcome).where(
            alert_sent.c.job_execution_id == execution_id
        )
        with self._reader.connect() as conn:
            return {str(k): str(o) for k, o in conn.execute(query)}
