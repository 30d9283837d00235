from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path

import fsspec
import pytest

from batchline import BatchStatus, Engine, JobBuilder, ParameterError, StepBuilder
from batchline.errors import ConfigurationError
from batchline.items.files.checksums import (
    ChecksumError,
    ChecksumTask,
    VerifyChecksumTask,
    verify_checksum,
    verify_ok_marker,
    write_checksum,
)
from batchline.items.files.delimited import DelimitedReader
from batchline.items.files.merge import MergeError, MergeTask, merge_files
from batchline.items.files.templates import render
from batchline.items.files.transfer import TransferTask, copy_file
from batchline.model import ExecutionContext
from batchline.partitioners.files import LineRangeReader
from batchline.testing.contract import check_reader


def run_tasks(engine: Engine, *tasks: object, **params: object) -> BatchStatus:
    job = JobBuilder(f"files-{uuid.uuid4().hex[:6]}")
    for index, task in enumerate(tasks):
        job.step(StepBuilder(f"task{index}").task(task))
    execution = engine.start(job.build(), params)  # type: ignore[arg-type]
    return execution.status


class TestTemplates:
    def test_fills_params_context_job_and_dates(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """Parameters with a date format, the step context and the job's names all resolve."""
        seen: list[str] = []

        def task(se: object) -> None:
            se.context["partition"] = 3  # type: ignore[attr-defined]
            seen.append(
                render(
                    "{job.name}/{params.day:%Y/%m/%d}/part-{context.partition:03d}-{region}.csv",
                    se,  # type: ignore[arg-type]
                    {"region": "eu"},
                )
            )

        job = JobBuilder("export").step(StepBuilder("write").task(task)).build()
        sqlite_engine.start(job, {"day": dt.date(2024, 2, 29)})
        assert seen == ["export/2024/02/29/part-003-eu.csv"]

    def test_missing_or_empty_value_is_an_error_naming_it(self) -> None:
        """A name without a value, or an empty one, raises ParameterError naming it."""
        with pytest.raises(ParameterError, match=r"no value for 'params\.day'"):
            render("out/{params.day}.csv")
        with pytest.raises(ParameterError, match="no value for 'region'"):
            render("out/{region}.csv", None, {"region": ""})
        with pytest.raises(ParameterError, match="unsupported field"):
            render("out/{params.day.__class__!r}.csv")
        assert render("out/{today:%Y}.csv").startswith("out/20")


class TestChecksums:
    @pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha512"])
    def test_written_in_sum_format_and_verified(self, tmp_path: Path, algorithm: str) -> None:
        """The sidecar reads like the *sum tools' output; a changed file fails verification."""
        path = tmp_path / "data.csv"
        path.write_bytes(b"a,b\n1,2\n")
        sidecar = Path(write_checksum(str(path), algorithm))
        digest = hashlib.new(algorithm, path.read_bytes()).hexdigest()
        assert sidecar.read_text() == f"{digest}  data.csv\n"
        assert verify_checksum(str(path), algorithm) == digest
        path.write_bytes(b"a,b\n1,3\n")
        with pytest.raises(ChecksumError, match=f"data.csv: {algorithm} is"):
            verify_checksum(str(path), algorithm)

    def test_tasks_in_a_job(self, sqlite_engine: Engine, tmp_path: Path) -> None:
        """ChecksumTask writes sums and .ok for a templated path; VerifyChecksumTask checks them."""
        path = tmp_path / "out-2024.csv"
        path.write_text("x\n")
        template = str(tmp_path / "out-{params.year}.csv")
        write = ChecksumTask(template, ["sha256", "md5"])
        verify = VerifyChecksumTask(template, ["sha256", "md5"], ok_marker=True)
        assert run_tasks(sqlite_engine, write, verify, year=2024) is BatchStatus.COMPLETED
        verify_ok_marker(str(path))
        path.write_text("changed\n")
        with pytest.raises(ChecksumError, match=r"\.ok says 2"):
            verify_ok_marker(str(path))
        assert run_tasks(sqlite_engine, verify, year=2024) is BatchStatus.FAILED


class TestMerge:
    def test_header_once_and_parts_removed(self, tmp_path: Path) -> None:
        """Partition files merge with one header; the parts go only after the merge verifies."""
        parts = []
        for i in range(3):
            part = tmp_path / f"part-{i}.csv"
            part.write_text(f"id,name\n{i},a\n{i},b\n")
            parts.append(str(part))
        target = tmp_path / "all.csv"
        result = merge_files(parts, str(target))
        assert target.read_text() == "id,name\n0,a\n0,b\n1,a\n1,b\n2,a\n2,b\n"
        assert result.lines == 6 and not any(Path(p).exists() for p in parts)
        again = merge_files(parts, str(target))  # a rerun after a crash: nothing left to do
        assert again.parts == [] and target.read_text().count("id,name") == 1

    def test_different_headers_refused_and_parts_kept(self, tmp_path: Path) -> None:
        """Parts whose headers differ are not merged, and none is removed."""
        (tmp_path / "a.csv").write_text("id,name\n1,a\n")
        (tmp_path / "b.csv").write_text("id,nom\n2,b\n")
        with pytest.raises(MergeError, match="has header"):
            merge_files([str(tmp_path / "a.csv"), str(tmp_path / "b.csv")], str(tmp_path / "t"))
        assert (tmp_path / "a.csv").exists() and (tmp_path / "b.csv").exists()

    def test_merge_task_with_glob(self, sqlite_engine: Engine, tmp_path: Path) -> None:
        """MergeTask merges the sorted glob matches into the templated target."""
        for i in (2, 1):
            (tmp_path / f"p{i}.csv").write_text(f"h\n{i}\n")
        task = MergeTask(str(tmp_path / "p*.csv"), str(tmp_path / "{params.name}.csv"))
        assert run_tasks(sqlite_engine, task, name="merged") is BatchStatus.COMPLETED
        assert (tmp_path / "merged.csv").read_text() == "h\n1\n2\n"


class TestTransferAndRemoteFiles:
    def test_copy_to_memory_and_read_there(self, tmp_path: Path) -> None:
        """A file copied to another fsspec store reads there and passes the reader contract."""
        source = tmp_path / "in.csv"
        source.write_text("id,name\n1,a\n2,b\n3,c\n")
        target = f"memory://bl-{uuid.uuid4().hex[:6]}/in.csv"
        digest = copy_file(str(source), target)
        assert digest == hashlib.sha256(source.read_bytes()).hexdigest()
        rows = [{"id": str(i), "name": n} for i, n in ((1, "a"), (2, "b"), (3, "c"))]
        check_reader(lambda: DelimitedReader(target), expected=rows)
        assert fsspec.filesystem("memory").exists(target)

    def test_move_task_is_idempotent(self, sqlite_engine: Engine, tmp_path: Path) -> None:
        """A move removes the source once copied; run again it finds the target and succeeds."""
        (tmp_path / "a.txt").write_text("payload")
        task = TransferTask(str(tmp_path / "a.txt"), str(tmp_path / "out" / "b.txt"), move=True)
        assert run_tasks(sqlite_engine, task) is BatchStatus.COMPLETED
        assert not (tmp_path / "a.txt").exists()
        assert (tmp_path / "out" / "b.txt").read_text() == "payload"
        assert run_tasks(sqlite_engine, task) is BatchStatus.COMPLETED
        with pytest.raises(ConfigurationError, match="does not exist"):
            copy_file(str(tmp_path / "nope"), str(tmp_path / "x"))

    def test_a_file_is_never_copied_or_moved_onto_itself(self, tmp_path: Path) -> None:
        """The same path, the same file through a symlinked folder or a hard link, and the
        target's own .part are refused; the file is untouched."""
        source = tmp_path / "a.txt"
        source.write_text("payload")
        (tmp_path / "link").symlink_to(tmp_path)
        (tmp_path / "hard.txt").hardlink_to(source)
        for target in ("a.txt", "link/a.txt", "sub/../a.txt", "hard.txt"):
            for move in (True, False):
                with pytest.raises(ConfigurationError, match="the source is the same file"):
                    copy_file(str(source), str(tmp_path / target), move=move)
        (tmp_path / "b.part").write_text("part")
        with pytest.raises(ConfigurationError, match="the target's temporary copy"):
            copy_file(str(tmp_path / "b.part"), str(tmp_path / "b"), move=True)
        assert source.read_text() == "payload" and (tmp_path / "b.part").read_text() == "part"
        memory = f"memory://bl-{uuid.uuid4().hex[:6]}/a.txt"
        fsspec.filesystem("memory").pipe(memory, b"payload")
        with pytest.raises(ConfigurationError, match="the source is the same file"):
            copy_file(memory, memory.replace("/a.txt", "/./a.txt"), move=True)
        assert fsspec.filesystem("memory").cat(memory) == b"payload"

    def test_task_paths_stay_in_their_folder(self, sqlite_engine: Engine, tmp_path: Path) -> None:
        """A parameter climbing out of the template's folder fails the step with a message
        naming it and the path; the source is untouched; confine=False allows it."""
        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "a.txt").write_text("payload")
        task = TransferTask(str(tmp_path / "in" / "a.txt"), str(tmp_path / "in" / "{params.n}"))
        job = JobBuilder("escape").step(StepBuilder("move").task(task)).build()
        execution = sqlite_engine.start(job, {"n": "../../a.txt"})
        assert execution.status is BatchStatus.FAILED
        message = execution.exit_status.description
        assert "n='../../a.txt'" in message and "outside the folder" in message, message
        assert (tmp_path / "in" / "a.txt").read_text() == "payload"
        same = TransferTask(
            str(tmp_path / "in" / "a.txt"), str(tmp_path / "in" / "{params.n}"), move=True
        )
        assert run_tasks(sqlite_engine, same, n="../in/a.txt") is BatchStatus.FAILED
        assert (tmp_path / "in" / "a.txt").read_text() == "payload"
        free = TransferTask(
            str(tmp_path / "in" / "a.txt"), str(tmp_path / "in" / "{params.n}"), confine=False
        )
        assert run_tasks(sqlite_engine, free, n="../b.txt") is BatchStatus.COMPLETED
        assert (tmp_path / "b.txt").read_text() == "payload"

    def test_render_confines_only_when_asked(self) -> None:
        """Values may move around inside the template's folder, not out of it."""
        values = {"params.n": "2024/../x.csv"}
        assert render("in/{params.n}", None, values, confine=True) == "in/2024/../x.csv"
        for template, value in [
            ("in/{params.n}", "../x"),
            ("/data/in/{params.n}", "a/../../b"),
            ("s3://b/in/{params.n}", "../c"),
            ("out-{params.n}.csv", "/../../x"),
        ]:
            with pytest.raises(ParameterError, match=r"params\.n=.* outside"):
                render(template, None, {"params.n": value}, confine=True)
            assert value in render(template, None, {"params.n": value})
        assert render("{params.n}", None, {"params.n": "/abs/x"}, confine=True) == "/abs/x"

    def test_writer_refuses_a_store_that_cannot_truncate(self) -> None:
        """A restartable writer on memory:// (no truncate) is refused with what to do instead."""
        from batchline.items.files.delimited import DelimitedWriter

        writer = DelimitedWriter("memory://x/out.csv")
        with pytest.raises(ConfigurationError, match="need a local path"):
            writer.open(ExecutionContext())


class TestLineRangeReader:
    def test_bom_is_skipped_at_byte_zero_only(self, tmp_path: Path) -> None:
        """The first partition's first line has no BOM; a range starting later is not touched."""
        path = tmp_path / "in.txt"
        path.write_bytes(b"\xef\xbb\xbfone\ntwo\n")
        reader = LineRangeReader(str(path))
        reader.open(ExecutionContext())
        assert [reader.read(), reader.read(), reader.read()] == ["one", "two", None]
        reader.close()
        check_reader(lambda: LineRangeReader(str(path)), expected=["one", "two"], chunk_size=1)
        later = LineRangeReader(str(path), start=7)
        later.open(ExecutionContext())
        assert [later.read(), later.read()] == ["two", None]
        later.close()
