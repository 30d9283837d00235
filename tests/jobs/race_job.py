"""A slow one-step job that two processes race to start, for the launch-race test.

Run as ``python -m tests.jobs.race_job URL GO_DIR ROUNDS``. For each round r the process prints
``ready r``, waits until the file ``GO_DIR/go-r`` exists, starts job ``race`` with the
identifying parameter ``round=r`` and prints ``result r OUTCOME EXECUTION_ID`` where OUTCOME is
the final status or the name of the LaunchRefused error raised, then its message.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from batchline import Engine, JobBuilder, LaunchRefused, StepBuilder, StepExecution
from batchline.testing import eventually

JOB_NAME = "race"
RUN_SECONDS = 0.5  # long enough that the loser launches while the winner still runs
BARRIER_TIMEOUT = 60.0


def work(se: StepExecution) -> None:
    time.sleep(RUN_SECONDS)


def wait_for(path: Path) -> None:
    eventually(
        path.exists,
        timeout=BARRIER_TIMEOUT,
        interval=0.0005,
        message=f"barrier {path} never opened",
    )


def main(argv: list[str]) -> int:
    url, go_dir, rounds = argv[0], Path(argv[1]), int(argv[2])
    with Engine(url) as engine:
        engine.register(JobBuilder(JOB_NAME).step(StepBuilder("work").task(work)).build())
        for number in range(rounds):
            print(f"ready {number}", flush=True)
            wait_for(go_dir / f"go-{number}")
            try:
                execution = engine.start(JOB_NAME, {"round": number})
            except LaunchRefused as refused:
                message = str(refused).replace("\n", " ")
                print(f"result {number} {type(refused).__name__} - {message}", flush=True)
            else:
                status = execution.status.value
                print(f"result {number} {status} {execution.id}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
