"""Jobs the web tests start through `batchline serve --jobs tests.jobs.web_jobs`.

``web_count`` counts ``count:int`` items (default 40) in chunks of 2, each item taking
WEB_JOBS_DELAY seconds (an environment variable of the server, so a test can watch it run and
stop it mid-way) and waiting while the file WEB_JOBS_GATE names exists (so a test holds it in a
chunk: STOPPING lasts until the test lets it go); ``web_skips`` skips the items its processor
refuses, one of them markup; ``web_failing`` always fails; ``web_partitioned`` runs a task in
three partitions; ``web_partitioned_count`` counts 36 items in three partitions of a chunk
step, three times as slowly as ``web_count``; ``reports/daily`` (a name with a slash) does
nothing; ``web_routed`` routes through a decider (``route:str`` GO, the default, or HOLD, which
stops the job and makes a restart begin at ``load``) to a split.
"""

from __future__ import annotations

import os
import time

from batchline import Decider, JobBuilder, JobExecution, ListWriter, StepBuilder, StepExecution
from batchline.partitioners.ranges import LOWER, UPPER, IntegerRangePartitioner

DELAY_ENV = "WEB_JOBS_DELAY"
GATE_ENV = "WEB_JOBS_GATE"
MARKUP = "<script>alert(1)</script>"


def _numbers(se: StepExecution) -> range:
    return range(int(se.parameters.get("count", 40)))


def _slow(item: int) -> int:
    time.sleep(float(os.environ.get(DELAY_ENV, "0") or 0))
    gate = os.environ.get(GATE_ENV)
    while gate and os.path.exists(gate):  # held mid-chunk while the test's gate file exists
        time.sleep(0.02)
    return item


count_job = (
    JobBuilder("web_count")
    .step(StepBuilder("count").chunk(2).reader(_numbers).processor(_slow).writer(ListWriter()))
    .build()
)


class Refused(ValueError):
    pass


def _refuse_markup(item: str) -> str:
    if item.startswith("<") or item.startswith("bad"):
        raise Refused(f"refused {item}")
    return item


skips_job = (
    JobBuilder("web_skips")
    .step(
        StepBuilder("load")
        .chunk(5)
        .reader(lambda se: ["a", MARKUP, "b", *[f"bad {n}" for n in range(60)], "c"])
        .processor(_refuse_markup)
        .writer(ListWriter())
        .skip(Refused, limit=None)
    )
    .build()
)


def _fail(se: StepExecution) -> None:
    raise RuntimeError("the task exploded")


failing_job = JobBuilder("web_failing").step(StepBuilder("explode").task(_fail)).build()


def _work(se: StepExecution) -> None:
    se.context["done"] = True


partitioned_job = (
    JobBuilder("web_partitioned")
    .step(
        StepBuilder("split").partition(
            StepBuilder("work").task(_work), IntegerRangePartitioner(1, 9), grid_size=3
        )
    )
    .build()
)


def _slower(item: int) -> int:  # three times web_count's delay: long enough to watch
    for _ in range(3):
        _slow(item)
    return item


def _my_range(se: StepExecution) -> range:
    return range(int(se.context[LOWER]), int(se.context[UPPER]) + 1)


partitioned_count_job = (
    JobBuilder("web_partitioned_count")
    .step(
        StepBuilder("spread").partition(
            StepBuilder("count")
            .chunk(2)
            .reader(_my_range)
            .processor(_slower)
            .writer(lambda step: ListWriter()),
            IntegerRangePartitioner(1, 36),
            grid_size=3,
        )
    )
    .build()
)


slash_job = JobBuilder("reports/daily").step(StepBuilder("report").task(lambda se: None)).build()


def _route(execution: JobExecution, last: StepExecution | None) -> str:
    return str(execution.parameters.get("route", "GO"))


def _nothing(se: StepExecution) -> None:
    pass


routed_job = (
    JobBuilder("web_routed")
    .start(StepBuilder("check").task(_nothing))
    .next(Decider("route", _route))
    .on("GO")
    .to(StepBuilder("load").task(_nothing))
    .on("HOLD")
    .stop_and_restart("load")
    .on("*")
    .fail()
    .from_("load")
    .split(
        [StepBuilder("index").task(_nothing)],
        [StepBuilder("notify").task(_nothing)],
        name="publish",
    )
    .build()
)
