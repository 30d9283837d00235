"""Property tests: a columnar step and a row step over the same CSV (bad rows included) give
the same rows, the same counts and the same skipped records; and a columnar reader restarted
at any committed point, with any batch size, reads exactly the rest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from batchline import ExecutionContext, StepBuilder
from batchline.items.arrow import ArrowCsvReader, ArrowJsonReader
from batchline.items.files.delimited import DelimitedReader
from batchline.items.memory import ListWriter
from batchline.testing import run_step, temporary_engine
from tests.backends import import_extra

pa = import_extra("pyarrow", "arrow")
pc = import_extra("pyarrow.compute", "arrow")

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("qty", pa.int64())])


@dataclass(slots=True)
class Trade:
    id: int
    name: str
    qty: int


good = st.tuples(
    st.integers(-(10**9), 10**9),
    st.text("abcdefgh XYZ,\"'", min_size=1, max_size=8),
    st.integers(-5, 5),
).map(lambda r: f'{r[0]},"{r[1].replace(chr(34), chr(34) * 2)}",{r[2]}')
bad = st.sampled_from(["7,x,abc", "8,y", "9,z,1,2", "x1,w,3", "10,v,1.5"])
lines = st.lists(st.one_of(good, good, good, bad, st.just("")), max_size=60)


def _columnar_rows(batches: list[Any]) -> list[dict[str, Any]]:
    return [row for batch in batches for row in batch.to_pylist()]


@settings(max_examples=30, deadline=None)
@given(lines=lines, rows=st.integers(1, 25), block=st.integers(16, 400))
def test_columnar_and_row_steps_agree(lines: list[str], rows: int, block: int) -> None:
    """Same rows written, same read/write/filter/skip counts, same skipped lines."""
    with TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_text("id,name,qty\n" + "".join(f"{line}\n" for line in lines))
        row_out: ListWriter[Any] = ListWriter()
        col_out: list[Any] = []
        row_step = (
            StepBuilder("rows")
            .chunk(rows)
            .reader(DelimitedReader(str(path), mapper=Trade))
            .processor(lambda t: {"id": t.id, "name": t.name, "qty": t.qty} if t.qty > 0 else None)
            .writer(row_out)
            .skip(Exception, limit=None)
            .build()
        )
        col_step = (
            StepBuilder("cols")
            .columnar(rows)
            .reader(ArrowCsvReader(str(path), schema=SCHEMA, block_size=block))
            .processor(lambda b: b.filter(pc.greater(b["qty"], 0)))
            .writer(lambda batches: col_out.extend(batches))
            .skip(Exception, limit=None)
            .build()
        )
        with temporary_engine() as engine:
            by_rows = run_step(engine, row_step)
            by_cols = run_step(engine, col_step)
            assert by_rows.status == by_cols.status
            (r,), (c,) = by_rows.step_executions, by_cols.step_executions
            counts = ("read_count", "write_count", "filter_count", "read_skip_count")
            assert [getattr(c, k) for k in counts] == [getattr(r, k) for k in counts]
            assert _columnar_rows(col_out) == row_out.items
            row_skips = [s.position for s in engine.skipped_items(by_rows.id)]
            col_skips = [s.position for s in engine.skipped_items(by_cols.id)]
            assert col_skips == row_skips


def _read_all(reader: Any, size: int) -> tuple[list[Any], list[Any]]:
    out: list[Any] = []
    while True:
        batch, errors, ended = reader.read_batch(size)
        out += [("bad", e.line) for e in errors]
        if batch is not None:
            out += batch.to_pylist()
        if ended or (batch is None and not errors):
            return _split(out)


@settings(max_examples=40, deadline=None)
@given(
    lines=lines,
    first=st.integers(1, 20),
    then=st.integers(1, 20),
    cut=st.integers(0, 8),
    block=st.integers(16, 300),
    json=st.booleans(),
)
def test_restart_at_any_commit_with_any_batch_size(
    lines: list[str], first: int, then: int, cut: int, block: int, json: bool
) -> None:
    """Reading ``cut`` batches of ``first`` rows, saving, and reopening to read batches of
    ``then`` rows gives exactly what one uninterrupted read gives."""
    with TemporaryDirectory() as folder:
        path = Path(folder) / "in"
        if json:
            text = "".join(_as_json(line) + "\n" for line in lines)
            path.write_text(text)

            def make() -> Any:
                return ArrowJsonReader(str(path), schema=SCHEMA, block_size=block)
        else:
            path.write_text("id,name,qty\n" + "".join(f"{line}\n" for line in lines))

            def make() -> Any:
                return ArrowCsvReader(str(path), schema=SCHEMA, block_size=block)

        whole = make()
        whole.open(ExecutionContext())
        expected = _read_all(whole, 1000)
        whole.close()
        reader = make()
        reader.open(ExecutionContext())
        got: list[Any] = []
        for _ in range(cut):
            batch, errors, ended = reader.read_batch(first)
            got += [("bad", e.line) for e in errors]
            got += batch.to_pylist() if batch is not None else []
            if ended:
                break
        context = ExecutionContext()
        reader.update(context)
        reader.close()
        again = make()
        again.open(ExecutionContext(dict(context)))
        rows, bad = _read_all(again, then)
        again.close()
        before = _split(got)
        assert (before[0] + rows, before[1] + bad) == expected


def _split(read: list[Any]) -> tuple[list[Any], list[Any]]:
    """Rows and bad lines apart: a batch's errors come before its rows, whatever their order."""
    return [r for r in read if isinstance(r, dict)], [r for r in read if isinstance(r, tuple)]


def _as_json(line: str) -> str:
    """The CSV line as a JSON object (bad lines stay bad: a string where a number goes)."""
    import csv
    import json

    fields = next(csv.reader([line]), [])
    if len(fields) != 3:
        return '{"id": "' + line.replace('"', "") + '"}' if line else ""
    names = ["id", "name", "qty"]
    value: dict[str, Any] = {}
    for name, field in zip(names, fields, strict=True):
        try:
            value[name] = int(field) if name != "name" else field
        except ValueError:
            value[name] = field
    return json.dumps(value)
