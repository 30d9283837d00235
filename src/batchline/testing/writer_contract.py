"""The writer half of the contract kit (see ``batchline.testing.contract``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchline.items.base import Chunk, ItemStream, ItemWriter
from batchline.model import ExecutionContext, StepExecution
from batchline.testing.violations import ContractViolation
from batchline.transaction import NoTransactionManager, TransactionManager


@dataclass
class WriterReport:
    output: Any
    boundaries: list[int]
    checks: list[str] = field(default_factory=list)


class _SimulatedCrash(Exception):
    pass


class _Run:
    """Plays the chunk step's part for a writer: transactions, commit count, context."""

    def __init__(self, writer: Any, tm: TransactionManager, context: ExecutionContext) -> None:
        self.writer = writer
        self.tm = tm
        self.context = context
        self.se = StepExecution(id=0, job_execution_id=0, step_name="contract")
        self.se.commit_count = int(context.get("contract.commits", 0))

    def open(self) -> None:
        if isinstance(self.writer, ItemStream):
            self.writer.open(self.context)

    def chunk(self, items: Sequence[Any], *, fail: bool = False) -> None:
        commits, saved = self.se.commit_count, self.context.to_json()
        try:
            with self.tm.begin() as tx:
                self.writer.write(list(items), Chunk(commits + 1, tx.connection, self.se))
                self.se.commit_count += 1
                self.context["contract.commits"] = self.se.commit_count
                if isinstance(self.writer, ItemStream):
                    self.writer.update(self.context)
                    self.context = ExecutionContext.from_json(self.context.to_json())
                if fail:
                    raise _SimulatedCrash
        except _SimulatedCrash:
            self.se.commit_count = commits
            self.se.rollback_count += 1
            self.context = ExecutionContext.from_json(saved)

    def scan(self, items: Sequence[Any]) -> None:
        """The chunk fails, then is written again item by item in one transaction."""
        self.chunk(items, fail=True)
        with self.tm.begin() as tx:
            chunk = Chunk(self.se.commit_count + 1, tx.connection, self.se)
            for item in items:
                self.writer.write([item], chunk)
            self.se.commit_count += 1
            self.context["contract.commits"] = self.se.commit_count
            if isinstance(self.writer, ItemStream):
                self.writer.update(self.context)
                self.context = ExecutionContext.from_json(self.context.to_json())

    def complete(self) -> None:
        """The step completed: what a chunk step calls before close, and only then."""
        complete = getattr(self.writer, "complete", None)
        if callable(complete):
            complete()

    def close(self) -> None:
        if isinstance(self.writer, ItemStream):
            self.writer.close()


def check_writer(
    make: Callable[[], ItemWriter[Any]],
    items: Sequence[Any],
    output: Callable[[], Any],
    *,
    chunk_size: int = 2,
    transaction_manager: TransactionManager | None = None,
    reset: Callable[[], None] | None = None,
    expected: Any = None,
    expected_empty: Any = None,
) -> WriterReport:
    """Write everything; restart at every chunk boundary; a rolled-back chunk written again whole
    and item by item (as a skip scan does); reopen; empty.

    ``make`` returns a new writer on the same target; ``output()`` returns what the target holds
    (a file's bytes, a table's sorted rows); ``reset()`` empties a target the writer does not
    recreate itself (a table). SQL writers need ``transaction_manager``, e.g.
    ``SqlTransactionManager(engine)``. After a restart at any boundary, and after a chunk that
    rolled back and was written again, the output must equal the clean run's exactly.
    """
    tm: TransactionManager = transaction_manager or NoTransactionManager()
    chunks = [list(items[i : i + chunk_size]) for i in range(0, len(items), chunk_size)]

    def run(writer: Any, context: ExecutionContext, todo: list[list[Any]], **kw: Any) -> _Run:
        runner = _Run(writer, tm, context)
        runner.open()
        try:
            for chunk in todo:
                if kw.get("scan"):
                    runner.scan(chunk)
                    continue
                if kw.get("retry"):
                    runner.chunk(chunk, fail=True)
                runner.chunk(chunk)
            runner.complete()
        finally:
            runner.close()
        return runner

    def fresh() -> Any:
        if reset is not None:
            reset()
        return make()

    run(fresh(), ExecutionContext(), chunks)
    clean = output()
    if expected is not None and clean != expected:
        raise ContractViolation(
            f"write everything: output {clean!r:.300}, expected {expected!r:.300}"
        )
    report = WriterReport(clean, list(range(len(chunks) + 1)), ["write everything"])
    for k in range(len(chunks) + 1):
        runner = _Run(fresh(), tm, ExecutionContext())
        runner.open()
        try:
            for chunk in chunks[:k]:
                runner.chunk(chunk)
            if k < len(chunks):
                runner.chunk(chunks[k], fail=True)  # written, then the commit never happens
        finally:
            runner.close()
        run(make(), runner.context, chunks[k:])
        _same_output(f"restart after {k} committed chunks", clean, output())
    report.checks.append("restart at every chunk boundary")
    run(fresh(), ExecutionContext(), chunks, retry=True)
    _same_output("every chunk rolled back once and written again", clean, output())
    report.checks.append("rolled-back chunk written again")
    run(fresh(), ExecutionContext(), chunks, scan=True)
    _same_output(
        "every chunk rolled back, then written item by item (a skip scan)", clean, output()
    )
    report.checks.append("rolled-back chunk scanned item by item")
    writer = fresh()
    run(writer, ExecutionContext(), chunks)
    if reset is not None:
        reset()
    run(writer, ExecutionContext(), chunks)
    _same_output("reopen: the same writer run twice", clean, output())
    report.checks.append("reopen")
    run(fresh(), ExecutionContext(), [])
    empty_output = output()
    if expected_empty is not None and empty_output != expected_empty:
        raise ContractViolation(
            f"empty input: output {empty_output!r:.300}, expected {expected_empty!r:.300}"
        )
    report.checks.append("empty input")
    return report


def _same_output(check: str, clean: Any, got: Any) -> None:
    if got != clean:
        raise ContractViolation(
            f"{check}: the output differs from a clean run's: {got!r:.300} != {clean!r:.300}"
        )
