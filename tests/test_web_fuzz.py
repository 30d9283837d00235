"""Schemathesis against the published schema of a real `batchline serve`, on every backend:
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


@pytest.mark.parametrize("backend", BACKENDS)
def test_schema_fuzzing(backend: str, tmp_path: Path) -> None:
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
            "coverage,fuzzing,stateful",
            "--max-examples",
            "30",
            "--generation-allow-x00",
            "true",
            "--seed",
            "7",
            "--workers",
            "1",
        ]
        if not Path(command[0]).exists():
            command[0] = shutil.which("schemathesis") or "schemathesis"
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert " passed" in result.stdout and "failures" not in result.stdout.split("SUMMARY")[-1]
