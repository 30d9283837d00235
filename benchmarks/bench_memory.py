"""Peak memory of a chunk job does not grow with its input: 10M rows against 1M rows.

The same job (the typed trade import of bench_typed_copy: DelimitedReader into the Trade
dataclass, the validating processor, chunks of 10,000, a SQLite job repository; the writer
keeps only a count, so what is measured is the framework, the reader and the mapper; the next
chunk is read ahead as it is for a database writer) runs in
a fresh interpreter on each file. Each run is wrapped in a small parent process that reports
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: the peak resident set of that job alone.

The large file has ``BATCHLINE_BENCH_RSS_ROWS`` rows, the small one a tenth of that. The
default is 5,000,000 (against 500,000) to keep ``make bench`` within its ten minutes;
``BATCHLINE_BENCH_RSS_ROWS=10000000`` runs the 10M-against-1M comparison (about 1 GB of CSV
and a minute and a half more). ``--quick`` uses 500,000 and 50,000.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from benchmarks.harness import Comparison
from benchmarks.trades import make_trades

LARGE, QUICK_LARGE = 5_000_000, 500_000
GOAL = 1.1

JOB = textwrap.dedent(
    """
    import sys
    from batchline import BatchStatus, Engine, JobBuilder, StepBuilder
    from batchline.items.files.delimited import DelimitedReader
    from benchmarks.trades import COMMIT_INTERVAL, Trade, validate

    class Count:
        def __init__(self):
            self.n = 0
        def write(self, items, chunk):
            self.n += len(items)

    path, repository, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    out = Count()
    step = (
        StepBuilder("load")
        .chunk(COMMIT_INTERVAL)
        .reader(lambda se: DelimitedReader(path, mapper=Trade))
        .processor(validate)
        .writer(out)
        .read_ahead(True)  # as with a database writer: up to one more chunk in memory
    )
    with Engine(repository) as engine:
        execution = engine.start(JobBuilder("rss").step(step).build(), {"file": path})
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    assert out.n == rows, (out.n, rows)
    """
)
WRAPPER = textwrap.dedent(
    """
    import resource, subprocess, sys
    subprocess.run(sys.argv[1:], check=True)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    """
)


def peak_kib(path: Path, rows: int, folder: Path, attempt: int) -> int:
    """The peak RSS (KiB, Linux) of one run of the job on ``path``, in its own process."""
    repository = f"sqlite:///{folder / f'repo-{rows}-{attempt}.db'}"
    job = [sys.executable, "-c", JOB, str(path), repository, str(rows)]
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *job],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )
    if done.returncode:
        raise RuntimeError(f"the job on {rows:,} rows failed:\n{done.stderr}")
    return int(done.stdout.split()[-1])


def run(quick: bool) -> list[Comparison]:
    large = QUICK_LARGE if quick else int(os.environ.get("BATCHLINE_BENCH_RSS_ROWS", LARGE))
    small = large // 10
    with tempfile.TemporaryDirectory(prefix="bl-bench-rss-") as name:
        folder = Path(name)
        paths = {}
        for rows in (small, large):
            paths[rows] = folder / f"trades-{rows}.csv"
            make_trades(paths[rows], rows)
        # One run each (a peak barely moves between runs; the large run takes a minute);
        # twice each in a quick run. The figure is each size's largest peak.
        peaks: dict[int, list[int]] = {small: [], large: []}
        for attempt in range(2 if quick else 1):
            for rows in (small, large):
                peaks[rows].append(peak_kib(paths[rows], rows, folder, attempt))
    big, little = max(peaks[large]) / 1024, max(peaks[small]) / 1024
    return [
        Comparison(
            f"peak RSS, {large:,} rows vs {small:,} rows",
            f"typed chunk job, {large:,} rows (MiB)",
            f"same job, {small:,} rows (MiB)",
            big,
            little,
            f"ratio <= {GOAL}",
            GOAL,
            note=(
                f"peak RSS in MiB (the 's' columns hold MiB here): {large:,} rows "
                f"{'/'.join(f'{p / 1024:.1f}' for p in peaks[large])}, {small:,} rows "
                f"{'/'.join(f'{p / 1024:.1f}' for p in peaks[small])}"
            ),
        )
    ]
