"""The reader/writer contract kit: the same restart checks for every reader and writer, yours too.

Use it from your own tests::

    from batchline.testing.contract import check_reader, check_writer

    def test_trades_reader_contract(tmp_path):
        path = write_sample(tmp_path)
        check_reader(lambda: TradesReader(path), expected=SAMPLE, chunk_size=2)

    def test_trades_writer_contract(tmp_path):
        out = tmp_path / "out.csv"
        check_writer(lambda: TradesWriter(out), SAMPLE, output=out.read_bytes)

Each check mirrors what the chunk step does: ``open(context)``, ``read``/``write``,
``update(context)`` just before a commit, ``close``; the context goes through JSON between a
"crash" and the restart, as it does through the job repository. A broken promise raises
ContractViolation (an AssertionError) naming the check and where it failed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchline.errors import ItemReadError
from batchline.items.base import ItemReader, ItemStream
from batchline.model import ExecutionContext
from batchline.testing.violations import ContractViolation
from batchline.testing.writer_contract import WriterReport, check_writer

__all__ = ["ContractViolation", "ReaderReport", "WriterReport", "check_reader", "check_writer"]


@dataclass
class ReaderReport:
    items: list[Any]
    boundaries: list[int]
    errors: list[ItemReadError] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


# --- readers --------------------------------------------------------------------------------


def check_reader(
    make: Callable[[], ItemReader[Any]],
    *,
    expected: Sequence[Any] | None = None,
    chunk_size: int = 2,
    empty: Callable[[], ItemReader[Any]] | None = None,
    malformed: Callable[[], ItemReader[Any]] | None = None,
    malformed_expected: Sequence[Any] | None = None,
    malformed_errors: int | None = None,
    max_items: int = 100_000,
) -> ReaderReport:
    """Read everything; restart at every chunk boundary; reopen; empty and malformed input.

    ``make`` returns a new reader on the same input each time it is called. ``malformed``
    makes one on input with bad records: each must raise ItemReadError naming its source and
    line, the next ``read()`` must go on, and the good records (``malformed_expected``) must
    all come out, also across a restart right after each error.
    """
    items = _read_all(make(), ExecutionContext(), max_items, "read everything")
    if expected is not None and items != list(expected):
        raise ContractViolation(
            f"read everything: got {_short(items)}, expected {_short(expected)}"
        )
    boundaries = list(range(0, len(items) + 1, chunk_size))
    report = ReaderReport(items, boundaries, checks=["read everything"])
    probe = make()
    if not isinstance(probe, ItemStream):
        report.checks.append("not an ItemStream: restart checks skipped")
        return report
    for k in boundaries:
        _restart_once(make, items, k, chunk_size, max_items)
    report.checks.append("restart at every chunk boundary")
    _restart_every_chunk(make, items, chunk_size, max_items)
    report.checks.append("restart after every chunk, chained")
    _reopen(probe, items, chunk_size, max_items)
    report.checks.append("reopen")
    if empty is not None:
        found = _read_all(empty(), ExecutionContext(), max_items, "empty input")
        if found:
            raise ContractViolation(f"empty input: read {_short(found)}, expected nothing")
        report.checks.append("empty input")
    if malformed is not None:
        report.errors = _malformed(malformed, malformed_expected, malformed_errors, max_items)
        report.checks.append("malformed input")
    return report


def _open(reader: Any, context: ExecutionContext) -> None:
    if isinstance(reader, ItemStream):
        reader.open(context)


def _close(reader: Any) -> None:
    if isinstance(reader, ItemStream):
        reader.close()


def _saved(stream: Any, context: ExecutionContext, check: str) -> ExecutionContext:
    """``update`` into the context, then a JSON round trip as through the repository."""
    stream.update(context)
    try:
        return ExecutionContext.from_json(context.to_json())
    except Exception as exc:
        raise ContractViolation(
            f"{check}: update() put non-JSON values in the context: {exc}"
        ) from None


def _read_all(reader: Any, context: ExecutionContext, limit: int, check: str) -> list[Any]:
    _open(reader, context)
    try:
        items = _take(reader, limit, check)
        if reader.read() is not None:
            raise ContractViolation(f"{check}: read() returned an item after returning None")
    finally:
        _close(reader)
    return items


def _take(reader: Any, count: int, check: str) -> list[Any]:
    items: list[Any] = []
    for _ in range(count):
        item = reader.read()
        if item is None:
            break
        items.append(item)
    return items


def _restart_once(
    make: Callable[[], Any], items: list[Any], k: int, chunk: int, limit: int
) -> None:
    check = f"restart after {k} items"
    first = make()
    first.open(ExecutionContext())
    context = ExecutionContext()
    try:
        head = _take(first, k, check)
        context = _saved(first, context, check)
        _take(first, chunk, check)  # read but never committed: must come again
    finally:
        first.close()
    rest = _read_all(make(), context, limit, check)
    _compare(check, items, head + rest)


def _restart_every_chunk(make: Callable[[], Any], items: list[Any], chunk: int, limit: int) -> None:
    context = ExecutionContext()
    seen: list[Any] = []
    for run in itertools.count():
        check = f"chained restart {run} (after {len(seen)} items)"
        reader = make()
        reader.open(context)
        try:
            got = _take(reader, chunk, check)
            context = _saved(reader, context, check)
        finally:
            reader.close()
        seen.extend(got)
        if len(got) < chunk or len(seen) > len(items) or run > limit:
            break
    _compare("restart after every chunk, chained", items, seen)


def _reopen(reader: Any, items: list[Any], chunk: int, limit: int) -> None:
    again = _read_all(reader, ExecutionContext(), limit, "reopen")
    _compare("reopen: the same reader opened again", items, again)
    again = _read_all(reader, ExecutionContext(), limit, "reopen")
    _compare("reopen: the same reader opened a third time", items, again)
    reader.open(ExecutionContext())
    try:
        head = _take(reader, chunk, "reopen")
        context = _saved(reader, ExecutionContext(), "reopen")
    finally:
        reader.close()
    rest = _read_all(reader, context, limit, "reopen with a saved context")
    _compare("reopen: the same reader restarted from its context", items, head + rest)


def _malformed(
    make: Callable[[], Any], expected: Sequence[Any] | None, count: int | None, limit: int
) -> list[ItemReadError]:
    good, errors, positions = _read_skipping(make(), ExecutionContext(), limit)
    if not errors:
        raise ContractViolation("malformed input: no ItemReadError was raised")
    for error in errors:
        if not error.source or error.line is None:
            raise ContractViolation(
                f"malformed input: error without source and line: {error} "
                f"(source={error.source!r}, line={error.line!r})"
            )
    if count is not None and len(errors) != count:
        raise ContractViolation(
            f"malformed input: {len(errors)} errors, expected {count}: "
            + "; ".join(str(e) for e in errors)
        )
    if expected is not None and good != list(expected):
        raise ContractViolation(
            f"malformed input: the good records read were {_short(good)}, "
            f"expected {_short(expected)}"
        )
    for index, (context, before) in enumerate(positions):
        rest, again, _ = _read_skipping(make(), context, limit)
        if good[:before] + rest != good or len(again) != len(errors) - index - 1:
            raise ContractViolation(
                f"malformed input: restarting right after error {index + 1} ({errors[index]}) "
                f"read {_short(rest)} with {len(again)} more errors"
            )
    return errors


def _read_skipping(
    reader: Any, context: ExecutionContext, limit: int
) -> tuple[list[Any], list[ItemReadError], list[tuple[ExecutionContext, int]]]:
    """Read as a skip policy would; after each error, the context a commit would save."""
    good: list[Any] = []
    errors: list[ItemReadError] = []
    positions: list[tuple[ExecutionContext, int]] = []
    reader.open(context)
    try:
        for _ in range(limit):
            try:
                item = reader.read()
            except ItemReadError as exc:
                errors.append(exc)
                positions.append((_saved(reader, ExecutionContext(), "malformed"), len(good)))
                continue
            if item is None:
                return good, errors, positions
            good.append(item)
    finally:
        reader.close()
    raise ContractViolation(f"malformed input: more than {limit} reads without an end")


def _compare(check: str, expected: list[Any], got: list[Any]) -> None:
    if got == expected:
        return
    lost = [x for x in expected if x not in got]
    doubled: list[Any] = []
    for x in got:
        if got.count(x) > expected.count(x) and x not in doubled:
            doubled.append(x)
    raise ContractViolation(
        f"{check}: {len(got)} items instead of {len(expected)}; lost {_short(lost)}, "
        f"duplicated {_short(doubled)}" + ("" if lost or doubled else "; same items, another order")
    )


def _short(items: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(x) for x in list(items)[:limit])
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return f"[{shown}{more}]"
