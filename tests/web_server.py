"""`batchline serve` as a real process on a free port, for the web tests; tokens made with
the real `batchline token create`."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from batchline.testing import eventually
from tests.backends import import_extra

ROOT = Path(__file__).resolve().parent.parent
JOBS = "tests.jobs.web_jobs"


def requires_web() -> None:
    for module in ("fastapi", "uvicorn", "jinja2", "python_multipart"):
        import_extra(module, "web")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def batchline(
    url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchline", "-r", url, *args],
        cwd=ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def create_token(url: str, name: str, scope: str) -> str:
    made = batchline(url, "token", "create", name, "--scope", scope)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def login(browser: httpx.Client, token: str) -> httpx.Response:
    """Log a client in as a browser does: the form's login token with its cookie."""
    form = browser.get("/login")
    nonce = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert nonce is not None, form.text
    return browser.post("/login", data={"token": token, "login_token": nonce[1]})


@dataclass
class Server:
    base: str
    url: str
    process: subprocess.Popen[str]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)


@contextmanager
def serving(
    url: str,
    *,
    delay: float = 0.0,
    gate: Path | None = None,
    module: str = "batchline",
    schedules: Path | None = None,
    port: int | None = None,  # a server coming back where one was
    serve_options: tuple[str, ...] = (),
    jobs: str = JOBS,
) -> Iterator[Server]:
    port = port or free_port()
    env = dict(
        os.environ,
        WEB_JOBS_DELAY=str(delay),
        BATCHLINE_HEARTBEAT_INTERVAL="0.5",
        BATCHLINE_SAMPLE_INTERVAL="0.5",
    )
    if gate is not None:
        env["WEB_JOBS_GATE"] = str(gate)
    command = [sys.executable, "-m", module, "-r", url, "--jobs", jobs]
    command += ["serve", "--port", str(port), *serve_options]
    if schedules is not None:
        command += ["--schedules", str(schedules)]
    base = f"http://127.0.0.1:{port}"
    # stderr to a file, not a pipe: a pipe nobody reads would block the server once full.
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True
        )

        def up() -> bool:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"serve exited {process.returncode}: {log.read()}")
            try:
                return httpx.get(f"{base}/api/openapi.json", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        try:
            eventually(up, timeout=30, message="batchline serve never answered")
            yield Server(base, url, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
