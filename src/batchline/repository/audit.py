"""The audit of operator actions: who (the token's name) did what, when, and how it ended.

Every action the web API and pages take on an operator's behalf (start, stop, restart,
abandon, recover, schedule changes) is one row, written after the action, refused ones
included with their reason, so several servers share one record.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from batchline.model import utcnow
from batchline.repository.columns import fit_chars
from batchline.repository.database import READ_ONLY
from batchline.repository.filters import Page
from batchline.repository.schema import audit_entry

DONE, REFUSED = "done", "refused"
DETAIL_LIMIT = 2000


@dataclass(frozen=True)
class AuditEntry:
    id: int
    action_time: dt.datetime
    token_name: str
    action: str
    target: str
    job_execution_id: int | None
    outcome: str
    detail: str


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})

    def record(
        self,
        token_name: str,
        action: str,
        target: str,
        *,
        job_execution_id: int | None = None,
        outcome: str = DONE,
        detail: str = "",
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                audit_entry.insert().values(
                    action_time=utcnow(),
                    token_name=token_name[:100],
                    action=action[:32],
                    target=target[:200],
                    job_execution_id=job_execution_id,
                    outcome=outcome,
                    detail=fit_chars(detail, DETAIL_LIMIT),
                )
            )

    def page(self, *, after: int | None = None, limit: int = 50) -> Page[AuditEntry]:
        """Newest first; pass ``next_after`` as ``after`` for the next page."""
        query = sa.select(audit_entry).order_by(audit_entry.c.id.desc()).limit(limit + 1)
        if after is not None:
            query = query.where(audit_entry.c.id < after)
        with self._reader.connect() as conn:
            rows = conn.execute(query).mappings().all()
        items = [AuditEntry(**dict(r)) for r in rows[:limit]]
        return Page(items, items[-1].id if len(rows) > limit else None)
