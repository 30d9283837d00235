"""Every code block of the documentation site and the README runs as written
(tests/docs_examples.py says how a page marks what is a file, what fails on purpose, what runs in
the background and what is not meant to run)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.backends import _admin_url, require_broker, require_server
from tests.docs_examples import SHELL, Block, Page, console_commands, parse

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
BLOCK_TIMEOUT = 180
SERVERS = {"postgresql", "mariadb"}
BROKERS = {"redis", "rabbitmq"}

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    # A reader's shell: no test settings of ours, the venv under test first on PATH.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHLINE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONWARNINGS"] = "ignore"
    env.pop("PYTHONPATH", None)
    return env


def _wait_for(url: str, process: subprocess.Popen[str], block: Block) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, _ = process.communicate()
            pytest.fail(f"{block.where}: background block exited {process.returncode}:\n{out}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers: a 401 or 404 is an answer
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{block.where}: {url} did not answer within 60 s")


def _command(block: Block, folder: Path, index: int) -> list[str]:
    if block.language in SHELL:
        code = console_commands(block.code) if block.language == "console" else block.code
        return ["bash", "-eo", "pipefail", "-c", code]
    script = folder / f".block-{index}.py"
    script.write_text(block.code, encoding="utf-8")
    return [sys.executable, script.name]


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run_page(page: Page, folder: Path, started: list[subprocess.Popen[str]]) -> None:
    env = _env()
    for index, block in enumerate(page.blocks):
        if block.file is not None:
            target = folder / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
            continue
        if not block.runs:
            continue
        command = _command(block, folder, index)
        if block.background is not None:
            process = subprocess.Popen(
                command,
                cwd=folder,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            started.append(process)
            _wait_for(block.background, process, block)
            continue
        try:
            done = subprocess.run(
                command,
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{block.where}: still running after {BLOCK_TIMEOUT} s:\n{block.code}")
        if done.returncode != block.returns:
            pytest.fail(
                f"{block.where}: exit {done.returncode}, the page expects {block.returns}\n"
                f"--- block\n{block.code}--- stdout\n{done.stdout}--- stderr\n{done.stderr}",
                pytrace=False,
            )


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", PAGES, ids=_id)
def test_page_examples_run(
    path: Path, tmp_path: Path, background: list[subprocess.Popen[str]]
) -> None:
    """The page's blocks run in order in a fresh folder, each ending as the page says."""
    page = parse(path)
    for need in page.needs:
        if need in SERVERS:
            require_server(need)
        elif need in BROKERS:
            require_broker(need)
        else:
            pytest.fail(f"{_id(path)}: needs: {need!r} is not a server the runner knows")
    if not any(b.runs or b.file for b in page.blocks):
        pytest.skip(f"{_id(path)} has no code to run")
    for server, database in page.fresh:
        _recreate(server, database)
    run_page(page, tmp_path, background)


def _recreate(server: str, database: str) -> None:
    admin = sa.create_engine(_admin_url(server), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if server == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {database}"))
            conn.execute(sa.text(f"CREATE DATABASE {database}"))
    finally:
        admin.dispose()


def test_directives_are_read(tmp_path: Path) -> None:
    """The runner reads each directive for the block right after it, and only for that one."""
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- needs: redis -->\n<!-- fresh: postgresql docs_x -->\n"
        "<!-- file: jobs.py -->\n```python\nJOB = 1\n```\n"
        "<!-- returns: 3 -->\n```bash\nexit 3\n```\n"
        "<!-- norun: a unit file -->\n```ini\n[Unit]\n```\n"
        "Text between.\n\n```console\n$ echo a \\\n  b\na b\n```\n"
    )
    parsed = parse(page)
    assert parsed.needs == ["redis", "postgresql"] and parsed.fresh == [("postgresql", "docs_x")]
    jobs, shell, unit, console = parsed.blocks
    assert (jobs.file, jobs.runs, jobs.code) == ("jobs.py", False, "JOB = 1\n")
    assert (shell.returns, shell.runs, shell.line) == (3, True, 8)
    assert (unit.norun, unit.runs) == ("a unit file", False)
    assert (console.returns, console.file, console.runs) == (0, None, True)
    assert console_commands(console.code) == "echo a \\\n  b\n"


def test_every_block_runs_or_says_why() -> None:
    """A block of a runnable language is run, written as a file, or marked norun with a reason;
    other languages are shown only (text, yaml, ...); no page has an unclosed fence."""
    for path in PAGES:
        for block in parse(path).blocks:
            assert block.language, f"{block.where}: a code block names no language"
