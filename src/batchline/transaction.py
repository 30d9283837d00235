"""Transaction managers: one transaction per chunk.

Implementing one::

    class MyTransactionManager:
        def begin(self) -> ContextManager[Transaction]: ...

``begin()`` yields a Transaction whose ``connection`` the writer uses; leaving the block commits,
an exception rolls back. When the manager's connections reach the job repository's database
(``repository.shares_connection_with(manager)``), the chunk step saves its progress through the
same connection, so data and progress commit together.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


@dataclass(slots=True)
class Transaction:
    """The chunk's transaction: ``connection`` is None for a manager with no database."""

    connection: Any = None


class TransactionManager(Protocol):
    """Begins a chunk's transaction.

    ``SqlTransactionManager`` (the default, on the repository's database) and
    ``NoTransactionManager`` (for writers with no database) implement it."""

    def begin(self) -> Any:
        """A context manager yielding a Transaction; commit on exit, roll back on error."""


class SqlTransactionManager:
    """Transactions on an SQLAlchemy engine (by default the job repository's)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def begin(self) -> Iterator[Transaction]:
        with self.engine.begin() as conn:
            yield Transaction(conn)


class NoTransactionManager:
    """For writers with no database: the chunk 'commits' when the writer returns."""

    engine = None

    @contextmanager
    def begin(self) -> Iterator[Transaction]:
        yield Transaction(None)
