"""The job the message-trigger tests start: ``trade`` requires an int ``n`` from 0 to 9999 and
records it in its step's context, so a test reads back which message started which instance.
MESSAGE_JOBS_DELAY (seconds) slows each run, for tests that kill the listener mid-stream."""

from __future__ import annotations

import os
import time

from batchline import JobBuilder, JobParameters, StepBuilder, StepExecution

DELAY_ENV = "MESSAGE_JOBS_DELAY"


def _check(params: JobParameters) -> None:
    n = params.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n < 10_000:
        raise ValueError(f"n must be an integer from 0 to 9999, not {n!r}")


def _record(se: StepExecution) -> None:
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    if delay:
        time.sleep(delay)
    se.context["n"] = se.parameters["n"]


trade_job = (
    JobBuilder("trade")
    .require("n")
    .validator(_check)
    .step(StepBuilder("record").task(_record))
    .build()
)
