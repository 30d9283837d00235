"""The REST API's execution list over 100,000 executions on PostgreSQL: a filtered page of 50.

A real `batchline serve` process on the database ``bench_queries.populated`` fills; the
candidate is ``GET /api/executions?status=FAILED&since=...&until=...&limit=50`` over HTTP
(keep-alive, with a read token: the token lookup is part of every request); the baseline is
the same query through ``Engine.find_executions`` in process. Goal: under 50 ms.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from batchline import Engine, ExecutionQuery
from batchline.repository.tokens import TokenStore
from benchmarks.bench_queries import EXECUTIONS, GOAL_SECONDS, QUICK_EXECUTIONS, WINDOW, populated
from benchmarks.harness import Comparison, side_by_side

ROOT = Path(__file__).resolve().parent.parent


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"batchline serve exited {process.returncode}")
        try:
            if httpx.get(f"{base}/api/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("batchline serve never answered")


def run(quick: bool) -> list[Comparison]:
    executions = QUICK_EXECUTIONS if quick else EXECUTIONS
    query = ExecutionQuery.of(statuses=["FAILED"], created_from=WINDOW[0], created_to=WINDOW[1])
    params = {
        "status": "FAILED",
        "since": WINDOW[0].isoformat(),
        "until": WINDOW[1].isoformat(),
        "limit": "50",
    }
    with populated(executions) as url, Engine(url) as engine:
        token = TokenStore(engine.repository.engine).create("bench", "read")  # type: ignore[attr-defined]
        port = _port()
        process = subprocess.Popen(
            [sys.executable, "-m", "batchline", "-r", url, "serve", "--port", str(port)],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(base, process)
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=headers) as client:

                def candidate() -> None:
                    response = client.get("/api/executions", params=params)
                    assert response.status_code == 200 and len(response.json()["items"]) == 50

                def baseline() -> None:
                    assert len(engine.find_executions(query).items) == 50

                cand, base_s = side_by_side(candidate, baseline, repeats=20)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return [
        Comparison(
            name=f"REST API, {executions:,} executions, PostgreSQL: page of 50, status + time",
            candidate="GET /api/executions (HTTP, token checked)",
            baseline="`Engine.find_executions` in process",
            candidate_seconds=cand,
            baseline_seconds=base_s,
            goal=f"< {GOAL_SECONDS * 1000:.0f} ms",
            goal_ratio=GOAL_SECONDS / base_s,
            note=f"{cand * 1000:.1f} ms against {base_s * 1000:.1f} ms, goal 50 ms",
        )
    ]
