"""The README's tour runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def run_block(tmp_path: Path, after: str | None, name: str) -> str:
    """Run the README's first python block (after the heading ``after``) as a script in
    ``tmp_path``; returns what it printed."""
    text = README.read_text()
    section = text.split(after, 1)[1] if after else text
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    (tmp_path / name).write_text(code.group(1))
    done = subprocess.run(
        [sys.executable, "-W", "ignore", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class TestTour:
    def test_tour_runs_and_prints_what_it_says(self, tmp_path: Path) -> None:
        """The tour's code, run on a 4-row file, prints the outcome its comment claims."""
        (tmp_path / "trades-2026-11-28.csv").write_text("id,amount\n1,10.5\n2,-3\n3,abc\n4,7\n")
        assert run_block(tmp_path, None, "tour.py").strip() == "COMPLETED 2 1 1"

    def test_flow_example_runs_and_prints_what_it_says(self, tmp_path: Path) -> None:
        """The Flows section's code stops after review, then its restart publishes."""
        printed = run_block(tmp_path, "## Flows", "flows.py").split()
        assert printed == ["load", "review", "STOPPED", "publish", "COMPLETED"]

    def test_query_example_runs_and_prints_what_it_says(self, tmp_path: Path) -> None:
        """The query section's code finds the failed executions, two a page."""
        printed = run_block(tmp_path, "## Querying from Python", "queries.py")
        assert printed.strip() == "['nightly'] 5 [5, 3, 1]"
