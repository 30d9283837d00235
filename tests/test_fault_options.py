"""Fault-tolerance options one by one: classification, limits, policies, no-rollback, limits."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from batchline import (
    BatchStatus,
    ConfigurationError,
    CsvRecordReader,
    Engine,
    JobBuilder,
    ListWriter,
    StepBuilder,
)
from batchline.errors import StartLimitExceeded
from batchline.faults import Backoff, Classifier, Phase


class Flaky(ConnectionError):
    pass


def numbers(n: int) -> list[int]:
    return list(range(1, n + 1))


class TestClassifier:
    def test_nearest_class_decides(self) -> None:
        """Include OSError but exclude FileNotFoundError: the nearer class in the MRO wins."""
        classify = Classifier(include=[OSError], exclude=[FileNotFoundError])
        assert classify(ConnectionError("x"))
        assert not classify(FileNotFoundError("x"))
        assert not classify(ValueError("x"))

    def test_single_class_needs_no_list(self) -> None:
        """A single exception class may be given without a list around it."""
        assert Classifier(include=ValueError)(ValueError("x"))

    def test_rejects_non_exceptions(self) -> None:
        """Listing something that is not an exception class is a configuration error."""
        with pytest.raises(ConfigurationError, match="not an exception class"):
            Classifier(include=[int])  # type: ignore[list-item]


class TestBackoff:
    def test_exponential_is_capped(self) -> None:
        """Exponential backoff doubles from its initial delay and never passes the maximum."""
        backoff = Backoff.exponential(initial=0.5, multiplier=2, maximum=3, jitter=0)
        assert [backoff.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]

    def test_jitter_stays_within_its_spread(self) -> None:
        """Jitter of 10% keeps every delay within 10% of the base delay."""
        backoff = Backoff.exponential(initial=1, multiplier=1, maximum=10, jitter=0.1)
        rng = random.Random(7)
        delays = [backoff.delay(1, rng) for _ in range(200)]
        assert all(0.9 <= d <= 1.1 for d in delays)
        assert len(set(delays)) > 1

    def test_fixed_and_none(self) -> None:
        """Fixed backoff waits the same each time; none never waits."""
        assert {Backoff.fixed(0.2).delay(n) for n in range(1, 5)} == {0.2}
        assert Backoff.none().delay(3) == 0.0


class TestRetry:
    def test_processor_retried_per_item_with_backoff(self, sqlite_engine: Engine) -> None:
        """A processor failing twice on one item succeeds on the third try after two waits."""
        waits: list[float] = []
        failures = {5: 2}

        def process(item: int) -> int:
            if failures.get(item, 0) > 0:
                failures[item] -= 1
                raise Flaky("timeout")
            return item

        out: list[int] = []
        builder = (
            StepBuilder("s")
            .chunk(4)
            .reader(numbers(8))
            .processor(process)
            .writer(out.extend)
            .retry([ConnectionError], limit=2, backoff=Backoff.fixed(0.25))
        )
        step = builder.build()
        step.faults.sleep = waits.append  # type: ignore[attr-defined]
        execution = sqlite_engine.start(JobBuilder("retry").step(step).build())
        assert execution.status is BatchStatus.COMPLETED
        assert out == numbers(8)
        assert waits == [0.25, 0.25]

    def test_exhausted_retry_of_unskippable_error_fails(self, sqlite_engine: Engine) -> None:
        """When retries run out and the error is not skippable, the step fails naming the item."""

        def process(item: int) -> int:
            if item == 3:
                raise Flaky("still down")
            return item

        step = (
            StepBuilder("s")
            .chunk(10)
            .reader(numbers(5))
            .processor(process)
            .writer(lambda items: None)
            .retry([Flaky], limit=2)
        )
        execution = sqlite_engine.start(JobBuilder("exhaust").step(step).build())
        assert execution.status is BatchStatus.FAILED
        assert "processing item 3" in execution.exit_status.description
        assert "Flaky: still down" in execution.exit_status.description

    def test_exhausted_retry_of_skippable_error_skips(self, sqlite_engine: Engine) -> None:
        """When retries run out on a skippable error, the item is skipped and the step goes on."""

        def process(item: int) -> int:
            if item == 3:
                raise Flaky("still down")
            return item

        out: list[int] = []
        step = (
            StepBuilder("s")
            .chunk(10)
            .reader(numbers(5))
            .processor(process)
            .writer(out.extend)
            .retry([Flaky], limit=2)
            .skip([Flaky], limit=1)
        )
        execution = sqlite_engine.start(JobBuilder("skipafter").step(step).build())
        assert execution.status is BatchStatus.COMPLETED
        assert out == [1, 2, 4, 5]
        assert execution.step_executions[0].process_skip_count == 1


class TestSkipLimits:
    def _job(self, builder: StepBuilder) -> JobBuilder:
        return JobBuilder("limits").step(builder)

    def _builder(self, errors: dict[int, Exception]) -> StepBuilder:
        def process(item: int) -> int:
            if item in errors:
                raise errors[item]
            return item

        return StepBuilder("s").chunk(3).reader(numbers(12)).processor(process).writer(list)

    def test_per_exception_limit(self, sqlite_engine: Engine) -> None:
        """A per-exception limit of 1 for KeyError fails on the second KeyError."""
        errors: dict[int, Exception] = {2: KeyError("a"), 5: ValueError("b"), 8: KeyError("c")}
        builder = self._builder(errors).skip(
            [KeyError, ValueError], limit=None, per_exception={KeyError: 1}
        )
        execution = sqlite_engine.start(self._job(builder).build())
        assert execution.status is BatchStatus.FAILED
        assert "skip limit 1 for KeyError exceeded" in execution.exit_status.description

    def test_unlimited_skips(self, sqlite_engine: Engine) -> None:
        """limit=None skips as many items as fail."""
        errors: dict[int, Exception] = {i: ValueError(str(i)) for i in range(1, 12)}
        builder = self._builder(errors).skip([ValueError], limit=None)
        execution = sqlite_engine.start(self._job(builder).build())
        assert execution.status is BatchStatus.COMPLETED
        assert execution.step_executions[0].process_skip_count == 11

    def test_custom_policy_composes_with_the_limit(self, sqlite_engine: Engine) -> None:
        """A policy that skips everything still stops at the configured limit of 2."""

        class SkipAll:
            def should_skip(self, error: BaseException, phase: Phase, skip_count: int) -> bool:
                return True

        errors: dict[int, Exception] = {i: RuntimeError(str(i)) for i in (1, 4, 7)}
        builder = self._builder(errors).skip(limit=2, policy=SkipAll())
        execution = sqlite_engine.start(self._job(builder).build())
        assert execution.status is BatchStatus.FAILED
        assert "skip limit 2 exceeded" in execution.exit_status.description

    def test_custom_policy_can_refuse(self, sqlite_engine: Engine) -> None:
        """A policy refusing process skips makes a skippable class fatal in that phase."""

        class NotInProcess:
            def should_skip(self, error: BaseException, phase: Phase, skip_count: int) -> bool:
                return phase != "process"

        builder = self._builder({4: ValueError("x")}).skip(
            [ValueError], limit=5, policy=NotInProcess()
        )
        execution = sqlite_engine.start(self._job(builder).build())
        assert execution.status is BatchStatus.FAILED

    def test_excluded_subclass_is_fatal(self, sqlite_engine: Engine) -> None:
        """Skipping LookupError but excluding KeyError: a KeyError fails the step."""
        builder = self._builder({4: KeyError("x")}).skip([LookupError], limit=5, exclude=[KeyError])
        execution = sqlite_engine.start(self._job(builder).build())
        assert execution.status is BatchStatus.FAILED


class TestNoRollback:
    def test_no_rollback_error_commits_the_chunk(self, sqlite_engine: Engine) -> None:
        """A writer error marked no-rollback lets the chunk commit and the step complete."""
        seen: list[int] = []

        class NotifyFailed(Exception):
            pass

        def write(items: Sequence[int]) -> None:
            seen.extend(items)
            raise NotifyFailed("mail server down")

        step = (
            StepBuilder("s")
            .chunk(4)
            .reader(numbers(8))
            .writer(write)
            .no_rollback(NotifyFailed)
            .build()
        )
        execution = sqlite_engine.start(JobBuilder("norollback").step(step).build())
        assert execution.status is BatchStatus.COMPLETED
        assert execution.step_executions[0].commit_count == 2
        assert seen == numbers(8)


class TestRunLimits:
    def test_step_timeout_fails_at_a_chunk_boundary(self, sqlite_engine: Engine) -> None:
        """A step over its timeout ends FAILED with a message naming the limit."""

        def endless(_: object) -> Iterator[int]:
            n = 0
            while True:
                n += 1
                yield n

        step = (
            StepBuilder("endless").chunk(50).reader(endless).writer(lambda items: None).timeout(0.2)
        )
        execution = sqlite_engine.start(JobBuilder("timeout").step(step).build())
        assert execution.status is BatchStatus.FAILED
        assert "exceeded its timeout of 0.2s" in execution.exit_status.description

    def test_job_timeout_fails_the_job(self, sqlite_engine: Engine) -> None:
        """A job over its timeout ends FAILED with a message naming the job's limit."""

        def endless(_: object) -> Iterator[int]:
            n = 0
            while True:
                n += 1
                yield n

        job = (
            JobBuilder("jobtimeout")
            .timeout(0.2)
            .step(StepBuilder("endless").chunk(50).reader(endless).writer(lambda items: None))
            .build()
        )
        execution = sqlite_engine.start(job)
        assert execution.status is BatchStatus.FAILED
        assert "job 'jobtimeout' exceeded its timeout of 0.2s" in execution.exit_status.description

    def test_start_limit(self, sqlite_engine: Engine) -> None:
        """A step with start_limit 2 refuses its third start; the job fails saying so."""

        def boom(_: object) -> None:
            raise RuntimeError("always")

        job = sqlite_engine.register(
            JobBuilder("limited").step(StepBuilder("s").task(boom).start_limit(2)).build()
        )
        first = sqlite_engine.start(job)
        second = sqlite_engine.restart(first.id)
        third = sqlite_engine.restart(second.id)
        assert third.status is BatchStatus.FAILED
        assert isinstance(third.failures[0], StartLimitExceeded)
        assert "start_limit is 2" in third.exit_status.description

    def test_allow_start_if_complete_reruns_the_step(self, sqlite_engine: Engine) -> None:
        """A completed step marked allow_start_if_complete runs again on restart."""
        runs: list[str] = []
        fail = {"now": True}

        def second(_: object) -> None:
            runs.append("second")
            if fail["now"]:
                raise RuntimeError("first time")

        job = sqlite_engine.register(
            JobBuilder("again")
            .step(
                StepBuilder("setup").task(lambda _: runs.append("setup")).allow_start_if_complete()
            )
            .step(StepBuilder("second").task(second))
            .build()
        )
        first = sqlite_engine.start(job)
        fail["now"] = False
        assert sqlite_engine.restart(first.id).status is BatchStatus.COMPLETED
        assert runs == ["setup", "second", "setup", "second"]

    def test_skipped_items_listed_through_the_engine(self, sqlite_engine: Engine) -> None:
        """The engine lists skipped items with phase, position and error, and counts them."""

        def process(item: int) -> int:
            if item == 4:
                raise ValueError("negative quantity")
            return item

        step = (
            StepBuilder("s")
            .chunk(3)
            .reader(numbers(6))
            .processor(process)
            .writer(list)
            .skip([ValueError])
        )
        execution = sqlite_engine.start(JobBuilder("listing").step(step).build())
        [skip] = sqlite_engine.skipped_items(execution.id)
        assert (skip.phase, skip.position, skip.item) == ("process", "item 4", "4")
        assert skip.error_type == "builtins.ValueError"
        assert skip.error_message == "negative quantity"
        assert skip.step_name == "s"
        assert sqlite_engine.count_skipped(execution.id) == {"process": 1}


class TestSkippedText:
    def test_a_skipped_raw_record_is_kept_as_its_line(
        self, sqlite_engine: Engine, tmp_path: Path
    ) -> None:
        """A raw CSV record (bytes) that the processor refuses is recorded as the line it was,
        without the b'...' of its repr and without its line end; bytes that are not UTF-8 are
        kept as escapes, not lost."""
        path = tmp_path / "in.csv"
        path.write_bytes(b"id,name\r\n1,ok\r\n2,bad\r\n3,caf\xe9 bad\r\n")

        def refuse(record: bytes) -> bytes:
            if b"bad" in record:
                raise ValueError("refused")
            return record

        step = (
            StepBuilder("s")
            .chunk(10)
            .reader(CsvRecordReader(str(path), header="skip"))
            .processor(refuse)
            .writer(ListWriter())
            .skip(ValueError, limit=5)
        )
        sqlite_engine.register(JobBuilder("raw").step(step).build())
        execution = sqlite_engine.start("raw", {})
        assert execution.status == BatchStatus.COMPLETED
        items = [s.item for s in sqlite_engine.skipped_items(execution.id)]
        assert items == ["2,bad", "3,caf\\xe9 bad"]
