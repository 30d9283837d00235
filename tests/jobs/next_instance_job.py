"""Two processes racing to start the next instance, for the run-id incrementer test.

Run as ``python -m tests.jobs.next_instance_job URL GO_FILE``: prints ``ready``, waits until
GO_FILE exists, calls ``engine.start_next_instance`` and prints ``run.id EXECUTION_ID STATUS``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from batchline import Engine, JobBuilder, StepBuilder
from batchline.testing import eventually

JOB_NAME = "nightly"
job = JobBuilder(JOB_NAME).step(StepBuilder("work").task(lambda se: None)).build()


def main(argv: list[str]) -> int:
    url, go = argv[0], Path(argv[1])
    with Engine(url) as engine:
        engine.register(job)
        print("ready", flush=True)
        eventually(go.exists, timeout=60, interval=0.0005, message=f"barrier {go} never opened")
        execution = engine.start_next_instance(JOB_NAME)
        print(execution.parameters["run.id"], execution.id, execution.status.value, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
