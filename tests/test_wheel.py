"""The package as its users get it: a wheel built from this tree, installed into a fresh venv.

An editable install reads templates, static files and migrations from the source tree, so a
file left out of the package data passes every other test; only an installed wheel shows it.
The wheel is built once per run (module fixture); installing it takes its dependencies from the
package index, so a machine that cannot reach one skips these tests (fails under CI=true).
"""

from __future__ import annotations

import email.parser
import os
import socket
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import batchline
from batchline.testing import eventually
from tests.backends import skip_or_fail

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path


def _run(args: list[str], cwd: Path | None = None, timeout: float = 600) -> str:
    done = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """An sdist and a wheel of this tree, made by ``python -m build``."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)])
    (wheel,) = out.glob("batchline-*.whl")
    (sdist,) = out.glob("batchline-*.tar.gz")
    return Built(wheel, sdist)


def _pip_install(venv: Path, requirement: str) -> None:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        skip_or_fail(f"pip could not install {requirement} into a fresh venv: {last}")


@pytest.fixture(scope="module")
def venv(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed, no extras."""
    path = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", str(path)])
    _pip_install(path, str(built.wheel))
    return path


class TestContents:
    def test_the_wheel_carries_templates_static_files_and_migrations(self, built: Built) -> None:
        """Every file the package reads at run time is inside the wheel."""
        names = set(zipfile.ZipFile(built.wheel).namelist())
        source = ROOT / "src"
        wanted = [
            p.relative_to(source).as_posix()
            for pattern in (
                "batchline/web/templates/**/*.html",
                "batchline/web/static/**/*",
                "batchline/repository/migrations/**/*.py",
                "batchline/repository/migrations/*.mako",
            )
            for p in source.glob(pattern)
            if p.is_file() and "__pycache__" not in p.parts
        ]
        assert wanted, "no data files found in the source tree"
        assert "batchline/py.typed" in names
        missing = sorted(set(wanted) - names)
        assert not missing, f"left out of the wheel: {missing}"

    def test_the_metadata_has_one_version_the_licence_and_classifiers(self, built: Built) -> None:
        """The wheel's version is batchline.__version__; it names its licence and classifiers."""
        with zipfile.ZipFile(built.wheel) as wheel:
            (meta_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
            meta = email.parser.Parser().parsestr(wheel.read(meta_name).decode())
            licences = [n for n in wheel.namelist() if n.endswith("/LICENSE")]
        assert meta["Version"] == batchline.__version__
        assert meta["License-Expression"] == "Apache-2.0"
        assert "Typing :: Typed" in meta.get_all("Classifier", [])
        assert licences, "the licence file is not in the wheel"

    def test_the_sdist_carries_the_sources_licence_and_changelog(self, built: Built) -> None:
        """The sdist rebuilds the package: sources, templates, licence and changelog."""
        with tarfile.open(built.sdist) as sdist:
            names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
        for name in ("pyproject.toml", "LICENSE", "CHANGELOG.md", "src/batchline/__init__.py"):
            assert name in names, f"{name} is not in the sdist"
        assert any(n.startswith("src/batchline/web/templates/") for n in names)


class TestInstalled:
    def test_the_command_line_answers(self, venv: Path) -> None:
        """`batchline --help` runs from the installed wheel and lists its commands."""
        out = _run([str(venv / "bin" / "batchline"), "--help"])
        assert "start" in out and "restart" in out and "serve" in out

    def test_the_demo_runs(self, venv: Path, tmp_path: Path) -> None:
        """`python -m batchline.demo --rows 1000` loads its trades from the installed package."""
        out = _run(
            [str(venv / "bin" / "python"), "-m", "batchline.demo", "--rows", "1000"], cwd=tmp_path
        )
        assert "COMPLETED" in out
        assert (tmp_path / "demo-output" / "batchline.db").exists()

    def test_serve_without_the_web_extra_says_which_extra(self, venv: Path, tmp_path: Path) -> None:
        """Without the web extra, `serve` ends with one line naming the extra to install."""
        done = subprocess.run(
            [str(venv / "bin" / "batchline"), "-r", f"sqlite:///{tmp_path}/r.db", "serve"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode != 0
        assert done.stderr.strip().count("\n") == 0
        assert "batchline[web]" in done.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(built: Built, venv: Path, tmp_path: Path) -> Iterator[str]:
    """`batchline serve` from the installed wheel with its web extra."""
    _pip_install(venv, f"batchline[web] @ {built.wheel.as_uri()}")
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(venv / "bin" / "batchline"),
            "-r",
            f"sqlite:///{tmp_path}/r.db",
            "serve",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            httpx.get(f"{url}/login", timeout=2)
        except httpx.TransportError:
            return False
        return True

    try:
        eventually(answers, timeout=60, message="the installed server never answered")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class TestInstalledWithWeb:
    def test_the_first_page_and_its_static_files(self, server: str) -> None:
        """The login page renders from the wheel's templates and its stylesheet is served."""
        page = httpx.get(f"{server}/login", timeout=10)
        assert page.status_code == 200
        assert "batchline" in page.text
        css = httpx.get(f"{server}/static/style.css", timeout=10)
        assert css.status_code == 200 and len(css.content) > 100
