"""The demo job (``batchline.demo``) on a small file: what it loads, filters and summarises, and
how its command line answers a second run of the same day."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from batchline import BatchStatus, Engine, JobExecution, JobInstanceAlreadyComplete
from batchline.demo import build_job, csv_path, open_engine, parameters
from batchline.demo.data import generate_trades
from batchline.demo.trades import symbol_summary, trades

ROWS = 2_000
DAY = dt.date(2026, 11, 28)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Engine, sa.Engine, Path]]:
    engine, db = open_engine(tmp_path)
    with engine:
        yield engine, db, tmp_path


def run_demo(engine: Engine, db: sa.Engine, output: Path) -> JobExecution:
    return engine.start(build_job(db, rows=ROWS), parameters(DAY, csv_path(output, DAY)))


class TestImportTrades:
    def test_loads_every_valid_row_and_filters_every_invalid_one(
        self, demo: tuple[Engine, sa.Engine, Path]
    ) -> None:
        """The job completes; trades holds the valid rows, filtered counts the invalid ones."""
        engine, db, output = demo
        execution = run_demo(engine, db, output)
        assert execution.status is BatchStatus.COMPLETED
        invalid = sum(execution.step("generate").context["invalid"].values())
        assert 0 < invalid < ROWS
        load = execution.step("load")
        with db.connect() as conn:
            loaded = conn.execute(sa.select(sa.func.count()).select_from(trades)).scalar_one()
        assert loaded == ROWS - invalid
        assert (load.read_count, load.write_count, load.filter_count) == (
            ROWS,
            ROWS - invalid,
            invalid,
        )
        assert load.commit_count == ROWS // 1_000

    def test_rejections_by_reason_are_the_generated_ones(
        self, demo: tuple[Engine, sa.Engine, Path]
    ) -> None:
        """The load step's rejection reasons and counts equal those the generator planted."""
        engine, db, output = demo
        execution = run_demo(engine, db, output)
        planted = execution.step("generate").context["invalid"]
        assert set(planted) == {"malformed price", "negative quantity", "unknown currency"}
        assert execution.step("load").context["rejected"] == planted

    def test_generation_is_deterministic(self, tmp_path: Path) -> None:
        """The same day and row count give the same bytes and the same invalid rows."""
        first = generate_trades(tmp_path / "a.csv", DAY, ROWS)
        second = generate_trades(tmp_path / "b.csv", DAY, ROWS)
        assert first == second
        assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()

    def test_summary_equals_a_direct_aggregate(self, demo: tuple[Engine, sa.Engine, Path]) -> None:
        """symbol_summary holds exactly the per-symbol count, quantity and notional of trades."""
        engine, db, output = demo
        execution = run_demo(engine, db, output)
        direct = (
            sa.select(
                trades.c.symbol,
                trades.c.currency,
                sa.func.count(),
                sa.func.sum(trades.c.quantity),
                sa.func.sum(trades.c.notional),
            )
            .where(trades.c.trade_date == DAY)
            .group_by(trades.c.symbol, trades.c.currency)
        )
        summary = sa.select(
            symbol_summary.c.symbol,
            symbol_summary.c.currency,
            symbol_summary.c.trades,
            symbol_summary.c.quantity,
            symbol_summary.c.notional,
        ).where(symbol_summary.c.trade_date == DAY)
        with db.connect() as conn:
            expected = {tuple(row) for row in conn.execute(direct)}
            got = {tuple(row) for row in conn.execute(summary)}
        assert got == expected
        assert len(got) == execution.step("summary").write_count > 0

    def test_second_start_raises_already_complete(
        self, demo: tuple[Engine, sa.Engine, Path]
    ) -> None:
        """Starting the same trade date again raises JobInstanceAlreadyComplete."""
        engine, db, output = demo
        assert run_demo(engine, db, output).status is BatchStatus.COMPLETED
        with pytest.raises(JobInstanceAlreadyComplete):
            run_demo(engine, db, output)


@pytest.mark.slow
class TestCommandLine:
    def test_second_run_says_already_completed_and_exits_0(self, tmp_path: Path) -> None:
        """Run twice: the second run names the completed execution and how to start a new one."""
        command = [sys.executable, "-m", "batchline.demo", "--rows", str(ROWS)]
        command += ["--output", str(tmp_path)]
        first = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        assert "import_trades COMPLETED" in first.stdout
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert "trade_date=2026-11-28 already completed (execution 1, finished" in second.stdout
        assert 'make demo ARGS="--date 2026-11-29' in second.stdout
        assert "python -m batchline.demo --date 2026-11-29" in second.stdout
