"""How a non-transactional writer (a file, a list) follows the chunk's transaction.

The chunk step counts commits and rollbacks on the StepExecution. A write that comes with the
same commit count as the previous one belongs to the same chunk: if the rollback count moved in
between, the chunk's transaction was rolled back and the writer must undo what it wrote for it
(a retry, or the start of a skip scan); if not, it is one more write in the same transaction.

A skip scan writes item by item, each in a savepoint, in one transaction; when the savepoint of
an item rolls back (another writer of a composite failed after this one), the writer must drop
that item too. ``watch`` follows the savepoints of an SQLAlchemy connection through its events;
a chunk without a connection has no savepoints to follow.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from batchline.items.base import Chunk


class Write(enum.Enum):
    NEW_CHUNK = "new chunk"  # the writes before it committed: remember where this one starts
    ROLLED_BACK = "rolled back"  # undo everything since this chunk's first write
    SAME_CHUNK = "same chunk"  # another write in the same transaction


class WriteTracker:
    """``snapshot()`` captures the writer's state, ``restore(state)`` goes back to it."""

    def __init__(self, snapshot: Callable[[], Any], restore: Callable[[Any], None]) -> None:
        self._snapshot = snapshot
        self._restore = restore
        self._key: tuple[int, int] | None = None
        self._conn: Any = None
        self._savepoints: list[Any] = []

    def reset(self) -> None:
        self._key = None
        self._conn = None
        self._savepoints = []

    def begin(self, chunk: Chunk) -> Write:
        """Where this write stands; call ``watch`` once the writer has acted on it."""
        se = chunk.step_execution
        key = (se.commit_count, se.rollback_count)
        previous, self._key = self._key, key
        if previous is None or previous[0] != key[0]:
            return Write.NEW_CHUNK
        if previous[1] != key[1]:
            return Write.ROLLED_BACK
        return Write.SAME_CHUNK

    def watch(self, chunk: Chunk) -> None:
        """Follow the savepoints of the chunk's connection (once per transaction)."""
        conn = chunk.connection
        if conn is self._conn:
            return
        self._conn = conn
        self._savepoints = []
        if not isinstance(conn, sa.Connection):
            return
        event.listen(conn, "savepoint", self._begun)
        event.listen(conn, "rollback_savepoint", self._rolled_back)
        event.listen(conn, "release_savepoint", self._released)
        if conn.in_nested_transaction():  # this write runs in a savepoint begun before
            self._savepoints.append(self._snapshot())

    def _begun(self, conn: Any, name: Any) -> None:
        self._savepoints.append(self._snapshot())

    def _rolled_back(self, conn: Any, name: Any, context: Any) -> None:
        if self._savepoints:
            self._restore(self._savepoints.pop())

    def _released(self, conn: Any, name: Any, context: Any) -> None:
        if self._savepoints:
            self._savepoints.pop()
