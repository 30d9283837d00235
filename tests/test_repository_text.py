"""Text from users and exceptions reaches the repository whole or cut by bytes, never as a
DataError about the column that replaces the real cause (MariaDB's TEXT holds 65,535 bytes)."""

from __future__ import annotations

from typing import Any

import pytest

from batchline import BatchStatus, Engine, ExitStatus, JobBuilder, StepBuilder, StepExecution
from batchline.repository.columns import CUT_MARKER, MAX_TEXT_BYTES, fit_chars, fit_text

# Each over 65,535 bytes in UTF-8 while under 60,000 characters.
LONG_TEXTS = {
    "latin": "é" * 40_000,
    "cjk": "漢" * 30_000,
    "emoji": "😀" * 20_000,
}


class Boom(Exception):
    pass


def _fail_with(message: str) -> Any:
    def task(_se: StepExecution) -> None:
        raise Boom(message)

    return task


class TestFitText:
    def test_cut_by_bytes_on_a_character_boundary(self) -> None:
        """A long text is cut to MAX_TEXT_BYTES of UTF-8, whole characters, with a marker."""
        for text in LONG_TEXTS.values():
            fitted = fit_text(text)
            assert len(fitted.encode()) <= MAX_TEXT_BYTES
            assert fitted.endswith(CUT_MARKER)
            assert text.startswith(fitted.removesuffix(CUT_MARKER))

    def test_short_text_unchanged(self) -> None:
        """Text that fits is stored as it is."""
        assert fit_text("naïve 漢字 😀") == "naïve 漢字 😀"

    def test_nul_and_lone_surrogates_are_escaped(self) -> None:
        """NUL (refused by PostgreSQL) and lone surrogates (no driver encodes them) are shown."""
        assert fit_text("a\x00b\udcffc") == "a\\x00b\\udcffc"

    def test_varchar_cut_by_characters(self) -> None:
        """VARCHAR(n) counts characters on every backend."""
        assert len(fit_chars("漢" * 300, 200)) == 200


class TestRecorded:
    @pytest.mark.parametrize("kind", sorted(LONG_TEXTS))
    def test_long_non_ascii_failure_keeps_its_cause(self, engine: Engine, kind: str) -> None:
        """The job and its step end FAILED with the exception's own message, on every backend."""
        text = LONG_TEXTS[kind]
        job = JobBuilder(f"long_{kind}").step(StepBuilder("s").task(_fail_with(text))).build()
        execution = engine.start(job)
        stored = engine.get_execution(execution.id)
        assert stored.status is BatchStatus.FAILED
        message = stored.exit_status.description
        assert "Boom" in message and text[:1000] in message, message[:300]
        assert "DataError" not in message
        [step] = engine.step_executions(execution.id)
        assert step.status is BatchStatus.FAILED
        assert "Boom" in step.exit_status.description
        assert text[:1000] in step.exit_status.description

    def test_nul_in_a_message(self, engine: Engine) -> None:
        """A message holding NUL is recorded (PostgreSQL refuses NUL in text)."""
        job = JobBuilder("nul").step(StepBuilder("s").task(_fail_with("bad\x00byte"))).build()
        stored = engine.get_execution(engine.start(job).id)
        assert stored.status is BatchStatus.FAILED
        assert "DataError" not in stored.exit_status.description
        assert stored.exit_status.description.startswith("step 's' FAILED: Boom: bad\\x00byte")

    def test_long_exit_code_from_a_listener(self, engine: Engine) -> None:
        """A custom exit code longer than its column is cut, and the job still COMPLETES."""

        class LongCode:
            def after_step(self, se: StepExecution) -> ExitStatus | None:
                return ExitStatus("X" * 100, "custom")

        step = StepBuilder("s").task(lambda _se: None).listener(LongCode())
        stored = engine.get_execution(engine.start(JobBuilder("code").step(step).build()).id)
        assert stored.status is BatchStatus.COMPLETED
        [recorded] = engine.step_executions(stored.id)
        assert recorded.exit_status.code == "X" * 61 + "..."

    def test_skipped_item_with_long_non_ascii_text(self, engine: Engine) -> None:
        """A skipped item's long non-ASCII item and error text are recorded, cut by bytes."""
        text = LONG_TEXTS["emoji"]

        def process(item: str) -> str:
            if item.startswith("bad"):
                raise Boom(text)
            return item

        items = ["ok", "bad" + text, "ok2"]
        written: list[str] = []
        step = (
            StepBuilder("s")
            .chunk(10)
            .reader(items)
            .processor(process)
            .writer(lambda chunk_items, _chunk: written.extend(chunk_items))
            .skip(Boom, limit=5)
        )
        execution = engine.start(JobBuilder("skips").step(step).build())
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status.description[:300]
        assert written == ["ok", "ok2"]
        [skip] = engine.skipped_items(execution.id)
        assert skip.error_message.startswith(text[:1000])
        assert skip.item is not None and "bad" in skip.item
