"""Which schedules an operator paused, kept in the repository so every replica agrees.

A scheduler asks just before it fires an occurrence; a paused schedule's occurrences are
skipped (and logged), not replayed on resume.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Engine

from batchline.model import utcnow
from batchline.repository.database import READ_ONLY, retrying
from batchline.repository.schema import schedule_state


class ScheduleStates:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(**{READ_ONLY: True})

    def paused(self) -> set[str]:
        """The ids of the schedules paused now."""
        query = sa.select(schedule_state.c.schedule_id).where(schedule_state.c.paused.is_(True))
        with self._reader.connect() as conn:
            return set(conn.execute(query).scalars())

    def is_paused(self, schedule_id: str) -> bool:
        query = sa.select(schedule_state.c.paused).where(
            schedule_state.c.schedule_id == schedule_id
        )
        with self._reader.connect() as conn:
            return bool(conn.execute(query).scalar())

    def set_paused(self, schedule_id: str, paused: bool, by: str) -> None:
        values = {"paused": paused, "update_time": utcnow(), "updated_by": by[:100]}
        where = schedule_state.c.schedule_id == schedule_id

        def write() -> None:
            with self.engine.begin() as conn:
                if conn.execute(schedule_state.update().where(where).values(**values)).rowcount:
                    return
                try:
                    with conn.begin_nested():
                        conn.execute(
                            schedule_state.insert().values(schedule_id=schedule_id, **values)
                        )
                except exc.IntegrityError:  # another replica made the row meanwhile
                    conn.execute(schedule_state.update().where(where).values(**values))

        retrying(write)
