"""Every console page and API list at 1,000,000 executions against the same at 10,000, on
PostgreSQL: the ratio stays near 1 and each answers within 100 ms.

Two databases are filled with SQL (``benchmarks/history.py``: generate_series, a few minutes
for the million), two ``batchline serve`` processes answer over HTTP with a read token (the
token lookup is part of each request); each page is fetched from both in turn, best of N.
The candidate is the page at the large history, the baseline the same page at the small one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import sqlalchemy as sa

from batchline.repository import create_engine, migrate
from batchline.repository.tokens import TokenStore
from benchmarks.bench_web_api import ROOT, _port, _wait
from benchmarks.harness import Comparison, side_by_side
from benchmarks.history import fill

ADMIN_URL = os.environ.get(
    "BATCHLINE_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SMALL, LARGE = 10_000, 1_000_000
QUICK_SMALL, QUICK_LARGE = 2_000, 100_000
GOAL_SECONDS = 0.100
GOAL_RATIO = 1.5
REPEATS = 15

# (label, path): every page and API list an operator opens, with the filters they use.
PAGES = [
    ("overview /", "/"),
    ("job page", "/jobs/job_2"),
    ("executions page", "/executions"),
    ("executions page, FAILED + STOPPED", "/executions?status=FAILED&status=STOPPED"),
    ("executions page, running now", "/executions?running=yes"),
    ("executions page, job prefix + FAILED", "/executions?prefix=job_&status=FAILED"),
    ("executions page, exit message", "/executions?message=row+13"),
    ("executions page, parameter", "/executions?param=region%3Dr3"),
    ("executions page, job + 200 per page", "/executions?job=job_1&size=200"),
    ("execution page", "/executions/{last}"),
    ("instance page", "/instances/7"),
    ("API jobs", "/api/jobs"),
    ("API executions", "/api/executions"),
    ("API executions, job + status", "/api/executions?job=job_3&status=FAILED"),
    ("API executions, running", "/api/executions?running=true"),
    ("API executions, parameter", "/api/executions?param=region%3Dr3"),
    ("API executions, time range", "/api/executions?since=2026-01-01T10:00&until=2026-01-01T20:00"),
    ("API job instances", "/api/jobs/job_2/instances"),
]


@contextmanager
def _history(executions: int) -> Iterator[str]:
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"bl_bench_console_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        bind = create_engine(url)
        migrate(bind)
        with bind.begin() as conn:
            fill(conn, executions)
        bind.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@contextmanager
def _serving(url: str) -> Iterator[httpx.Client]:
    bind = create_engine(url)
    token = TokenStore(bind).create("bench", "read")
    bind.dispose()
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
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            yield client
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)


def run(quick: bool) -> list[Comparison]:
    small, large = (QUICK_SMALL, QUICK_LARGE) if quick else (SMALL, LARGE)
    results = []
    with (
        _history(small) as small_url,
        _history(large) as large_url,
        _serving(small_url) as small_client,
        _serving(large_url) as large_client,
    ):
        for label, path in PAGES:
            large_path = path.format(last=large)
            small_path = path.format(last=small)

            def candidate(p: str = large_path) -> None:
                response = large_client.get(p)
                assert response.status_code == 200, (p, response.status_code)

            def baseline(p: str = small_path) -> None:
                response = small_client.get(p)
                assert response.status_code == 200, (p, response.status_code)

            candidate()  # warm both: the first request of a kind pays for imports and plans
            baseline()
            cand, base = side_by_side(candidate, baseline, repeats=REPEATS)
            results.append(
                Comparison(
                    name=f"console, PostgreSQL, {label}: {large:,} against {small:,} executions",
                    candidate=f"GET {path} at {large:,}",
                    baseline=f"same at {small:,}",
                    candidate_seconds=cand,
                    baseline_seconds=base,
                    goal=f"ratio <= {GOAL_RATIO} and < {GOAL_SECONDS * 1000:.0f} ms",
                    goal_ratio=min(GOAL_RATIO, GOAL_SECONDS / base),
                    note=f"{cand * 1000:.1f} ms against {base * 1000:.1f} ms",
                )
            )
    return results
