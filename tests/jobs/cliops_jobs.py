"""Jobs for the CLI edge tests: data that looks like markup or terminal control, and a job
whose repository goes away just before its final status is recorded.

``cut_job``'s after_job listener creates the file named by CUT_FLAG and waits until the test
has cut the repository off and removed the file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from batchline import JobBuilder, JobExecution, StepBuilder, StepExecution

CUT_FLAG = "CLIOPS_CUT_FLAG"
# Rich markup that does not parse, an OSC that retitles the terminal, a CSI that clears it.
# A backspace, and C1's one-byte CSI.
NASTY = "[/oops] [bold]\x1b]0;pwned\x07\x1b[2J\x08\x9b31mred"
NASTY_SHOWN = "[/oops] [bold]\\x1b]0;pwned\\x07\\x1b[2J\\x08\\x9b31mred"


def _fail(_se: StepExecution) -> None:
    raise ValueError(NASTY)


markup_fail_job = JobBuilder("cliops_markup").step(StepBuilder("explode").task(_fail)).build()


def _reject(item: str) -> str:
    if item != "ok":
        raise ValueError(f"rejected {item}")
    return item


markup_skip_job = (
    JobBuilder("cliops_skips")
    .step(
        StepBuilder("load")
        .chunk(5)
        .reader(["ok", NASTY, "ok"])
        .processor(_reject)
        .writer(lambda items, _chunk: None)
        .skip(ValueError, limit=5)
    )
    .build()
)


class _CutBeforeFinalStatus:
    def before_job(self, _execution: JobExecution) -> None:
        pass

    def after_job(self, _execution: JobExecution) -> None:
        flag = Path(os.environ[CUT_FLAG])
        flag.touch()
        deadline = time.monotonic() + 60
        while flag.exists() and time.monotonic() < deadline:
            time.sleep(0.02)


cut_job = (
    JobBuilder("cliops_cut")
    .step(StepBuilder("work").task(lambda _se: None))
    .listener(_CutBeforeFinalStatus())
    .build()
)
