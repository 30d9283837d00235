"""Schemathesis against the published schema of a real `batchline serve`, on every backend (every
phase on SQLite; the coverage and fuzzing phases, fewer examples, on the servers):
no 5xx whatever the input (NUL bytes included), and every response matches the schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import BACKENDS, fresh_database, import_extra
from tests.web_server import create_token, requires_web, serving

requires_web()
import_extra("schemathesis", "test")
pytestmark = pytest.mark.slow


# The API code is the same on every backend; what differs is how each database answers. The
# full run goes on SQLite, a shorter one (other seeds) on the servers, to keep CI within time.
EXAMPLES = {"sqlite": (30, 7), "postgresql": (5, 8), "mariadb": (5, 9)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_schema_fuzzing(backend: str, tmp_path: Path) -> None:
    examples, seed = EXAMPLES.get(backend, (10, 10))
    with fresh_database(backend, tmp_path) as url, serving(url) as server:
        token = create_token(url, "fuzzer", "operate")
        command = [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{server.base}/api/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--phases",
            "coverage,fuzzing,stateful" if backend == "sqlite" else "coverage,fuzzing",
            "--max-examples",
            str(examples),
            "--generation-allow-x00",
            "true",
            "--seed",
            str(seed),
            "--workers",
            "2",  # the server answers one while the next is sent: a third less wall time
        ]
        if not Path(command[0]).exists():
            command[0] = shutil.which("schemathesis") or "schemathesis"
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert " passed" in result.stdout and "failures" not in result.stdout.split("SUMMARY")[-1]
