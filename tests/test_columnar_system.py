"""Columnar steps as the rest of the system runs steps: the ``batchline`` command as a process
(start, stop, restart), partitions on worker processes with one file each (one fails, a restart
reruns only it), the counts the CLI and the repository show, and input the readers must refuse.

The jobs below are loaded by the CLI processes the tests start (``tests.test_columnar_system:
...``); they find their folder in the environment (``COLUMNAR_SYSTEM_DIR``), and the partition
workers, started by the CLI process, inherit it.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchline import ItemReadError, JobBuilder, StepBuilder, StepExecution
from batchline.cli.output import EXIT_STOPPED
from batchline.partitioners import FilesPartitioner
from batchline.testing import eventually
from batchline.workers import ProcessPartitionHandler
from tests.backends import fresh_database, import_extra

pa = import_extra("pyarrow", "arrow")
pc = import_extra("pyarrow.compute", "arrow")

from batchline.items.arrow import ArrowCsvReader, ArrowCsvWriter, ArrowJsonReader  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DIR_ENV = "COLUMNAR_SYSTEM_DIR"
DELAY_ENV = "COLUMNAR_SYSTEM_DELAY"
POISON = 1250  # a row of the second file: its partition fails while the file exists
SCHEMA = {"id": pa.int64(), "v": pa.int64()}


def _dir() -> Path:
    return Path(os.environ[DIR_ENV])


def _csv_reader(step: StepExecution) -> ArrowCsvReader:
    return ArrowCsvReader(str(step.context["partition.file"]), schema=SCHEMA, block_size=512)


def _csv_writer(step: StepExecution) -> ArrowCsvWriter:
    name = Path(str(step.context["partition.file"])).name
    return ArrowCsvWriter(str(_dir() / "out" / name), ["id", "v"])


def _checked(batch: Any) -> Any:
    if (_dir() / "poison").exists() and pc.any(pc.equal(batch["id"], POISON)).as_py():
        raise ValueError(f"poisoned row {POISON}")
    time.sleep(float(os.environ.get(DELAY_ENV, "0")))
    return batch


def _worker() -> StepBuilder:
    return StepBuilder("load").columnar(40).reader(_csv_reader).processor(_checked)


partitioned = (
    JobBuilder("columnar_partitions")
    .step(
        StepBuilder("load").partition(
            _worker().writer(_csv_writer),
            lambda step: FilesPartitioner(str(_dir() / "in"), "*.csv"),
            handler=ProcessPartitionHandler("tests.test_columnar_system:partitioned", workers=2),
        )
    )
    .build()
)

single = (
    JobBuilder("columnar_single")
    .step(
        StepBuilder("load")
        .columnar(40)
        .reader(lambda step: ArrowCsvReader(str(_dir() / "in" / "a.csv"), schema=SCHEMA))
        .processor(_checked)
        .writer(lambda step: ArrowCsvWriter(str(_dir() / "out" / "single.csv"), ["id", "v"]))
    )
    .build()
)

json_lines = (
    JobBuilder("columnar_json")
    .step(
        StepBuilder("load")
        .columnar(40)
        .reader(lambda step: ArrowJsonReader(str(step.parameters["input"])))
        .writer(lambda step: ArrowCsvWriter(str(_dir() / "out" / "json.csv"), ["id"]))
        .skip(ItemReadError, limit=1000)
    )
    .build()
)

# ``lambda s:`` is a writer function, not a factory (only a parameter named step makes one),
# while the same lambda is a reader factory: every chunk made a writer and dropped it.
misnamed_factory = (
    JobBuilder("columnar_misnamed_factory")
    .step(
        StepBuilder("load")
        .columnar(40)
        .reader(lambda s: ArrowCsvReader(str(_dir() / "in" / "a.csv"), schema=SCHEMA))
        .writer(lambda s: ArrowCsvWriter(str(_dir() / "out" / "misnamed.csv"), ["id", "v"]))
    )
    .build()
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Four CSV files of 1,000 rows each in ``in/``, an empty ``out/``."""
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    for k, name in enumerate("abcd"):
        rows = "".join(f"{i},{i * 7}\n" for i in range(k * 1000 + 1, k * 1000 + 1001))
        (tmp_path / "in" / f"{name}.csv").write_text("id,v\n" + rows)
    return tmp_path


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[str]:
    with fresh_database("postgresql", tmp_path) as url:
        yield url


def _env(url: str, folder: Path, delay: float = 0.0) -> dict[str, str]:
    return {
        **os.environ,
        "BATCHLINE_REPOSITORY": url,
        "BATCHLINE_JOBS": "tests.test_columnar_system",
        DIR_ENV: str(folder),
        DELAY_ENV: str(delay),
    }


def _batchline(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchline", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _steps(url: str) -> dict[str, tuple[str, int, int]]:
    """The newest execution's step executions: name -> (status, read, written)."""
    bind = sa.create_engine(url)
    try:
        with bind.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT step_name, status, read_count, write_count FROM batch_step_execution"
                    " WHERE job_execution_id = (SELECT max(id) FROM batch_job_execution)"
                )
            ).all()
    finally:
        bind.dispose()
    return {name: (status, read, written) for name, status, read, written in rows}


def _written_so_far(url: str) -> int:
    try:
        return _steps(url).get("load", ("", 0, 0))[2]
    except sa.exc.ProgrammingError:  # the CLI has not created the repository's tables yet
        return 0


def test_a_failed_partition_alone_is_rerun_and_the_output_equals_the_input(
    repository: str, folder: Path
) -> None:
    (folder / "poison").touch()
    env = _env(repository, folder)
    failed = _batchline("start", "tests.test_columnar_system:partitioned", env=env)
    assert failed.returncode == 1, failed.stderr[-2000:]
    first = _steps(repository)
    assert first["load:0001"][0] == "FAILED"
    # the rows before the poisoned chunk committed, and are counted as rows
    assert first["load:0001"][1] == (POISON - 1001) // 40 * 40
    (folder / "poison").unlink()
    restarted = _batchline("restart", "columnar_partitions", env=env)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    second = _steps(repository)
    assert "load:0001" in second
    assert second["load:0001"][1] == 1000 - first["load:0001"][1]
    # a partition that completed is not run again
    done = [name for name, (status, _, _) in first.items() if status == "COMPLETED"]
    assert not set(done) & set(second)
    for name in "abcd":
        assert (folder / "out" / f"{name}.csv").read_text() == (
            folder / "in" / f"{name}.csv"
        ).read_text()


def test_stopped_by_the_cli_then_restarted_writes_every_row_once(
    repository: str, folder: Path
) -> None:
    env = _env(repository, folder, delay=0.2)  # 5 s in all: the stop lands mid-step
    started = subprocess.Popen(
        [sys.executable, "-m", "batchline", "start", "tests.test_columnar_system:single"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(
            lambda: _written_so_far(repository) >= 80,
            timeout=60,
            message="no chunk committed",
        )
        stop = _batchline("stop", "1", env=env)
        assert stop.returncode == 0, stop.stderr
        _, err = started.communicate(timeout=60)
    finally:
        if started.poll() is None:
            started.kill()
            started.communicate()
    assert started.returncode == EXIT_STOPPED, err[-2000:]
    status, read, written = _steps(repository)["load"]
    assert status == "STOPPED" and read == written and 0 < read < 1000 and read % 40 == 0
    restarted = _batchline("restart", "1", env={**env, DELAY_ENV: "0"})
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    assert _steps(repository)["load"] == ("COMPLETED", 1000 - read, 1000 - read)
    expected = (folder / "in" / "a.csv").read_text()
    assert (folder / "out" / "single.csv").read_text() == expected


@pytest.mark.parametrize("name", ["events.jsonl.gzip", "events"])
def test_a_compressed_file_under_another_name_is_refused_not_read_as_bad_records(
    repository: str, folder: Path, name: str
) -> None:
    # ".gzip" is a suffix the row readers read as gzip, and an object store's key may have no
    # suffix at all: the bytes were parsed as JSON, every "record" a read skip, and the job
    # COMPLETED having read no row.
    source = folder / "in" / name
    source.write_bytes(gzip.compress(b"".join(b'{"id": %d}\n' % i for i in range(3000))))
    env = _env(repository, folder)
    result = _batchline(
        "start", "tests.test_columnar_system:json_lines", f"input={source}", env=env
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "compressed" in result.stderr and "decompress it first" in result.stderr
    assert _steps(repository)["load"][0] == "FAILED"


def test_a_writer_made_by_a_writer_function_fails_rather_than_counting_rows_written(
    repository: str, folder: Path
) -> None:
    result = _batchline(
        "start", "tests.test_columnar_system:misnamed_factory", env=_env(repository, folder)
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "lambda step" in result.stderr
    assert _steps(repository)["load"] == ("FAILED", 0, 0)
    assert not (folder / "out" / "misnamed.csv").exists()
