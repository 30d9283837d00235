"""The README's tour runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


class TestTour:
    def test_tour_runs_and_prints_what_it_says(self, tmp_path: Path) -> None:
        """The tour's code, run on a 4-row file, prints the outcome its comment claims."""
        code = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
        assert code is not None
        (tmp_path / "tour.py").write_text(code.group(1))
        (tmp_path / "trades-2026-11-28.csv").write_text("id,amount\n1,10.5\n2,-3\n3,abc\n4,7\n")
        done = subprocess.run(
            [sys.executable, "-W", "ignore", "tour.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "COMPLETED 2 1 1"

    def test_flow_example_runs_and_prints_what_it_says(self, tmp_path: Path) -> None:
        """The Flows section's code stops after review, then its restart publishes."""
        section = README.read_text().split("## Flows", 1)[1]
        code = re.search(r"```python\n(.*?)```", section, re.S)
        assert code is not None
        (tmp_path / "flows.py").write_text(code.group(1))
        done = subprocess.run(
            [sys.executable, "-W", "ignore", "flows.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["load", "review", "STOPPED", "publish", "COMPLETED"]

    def test_query_example_runs_and_prints_what_it_says(self, tmp_path: Path) -> None:
        """The query section's code finds the failed executions, two a page."""
        section = README.read_text().split("## Querying from Python", 1)[1]
        code = re.search(r"```python\n(.*?)```", section, re.S)
        assert code is not None
        (tmp_path / "queries.py").write_text(code.group(1))
        done = subprocess.run(
            [sys.executable, "-W", "ignore", "queries.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "['nightly'] 5 [5, 3, 1]"
