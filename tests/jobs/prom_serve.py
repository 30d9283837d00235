"""A process serving Prometheus metrics while it runs a job, for the scrape test.

``python -m tests.jobs.prom_serve URL GATE`` starts prometheus_client's own HTTP server on a free
port, prints the port, then runs ``prom_held``: one chunk step over 12 items whose writer waits
for the file GATE before each chunk. After the job it prints the status and serves on until its
standard input closes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import start_http_server

from batchline import Chunk, Engine, JobBuilder, StepBuilder
from batchline.observability.prometheus import PrometheusObserver
from batchline.testing import eventually

ITEMS = 12


def main(url: str, gate: Path) -> None:
    server, _ = start_http_server(0, addr="127.0.0.1")
    print(server.server_port, flush=True)

    def held(items: Sequence[int], chunk: Chunk) -> None:
        eventually(gate.exists, timeout=60, message="the gate stayed shut")

    step = StepBuilder("hold").chunk(5).reader(lambda se: iter(range(ITEMS))).writer(held)
    with Engine(url, observers=[PrometheusObserver()]) as engine:
        execution = engine.start(JobBuilder("prom_held").step(step).build())
    print(execution.status.value, flush=True)
    sys.stdin.read()  # serve until the test closes our input
    server.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
