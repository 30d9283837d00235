"""tests/backends.py: a missing extra or database driver skips its tests with the reason, and
fails them under CI=true; no test module fails to collect for want of one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import backends

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ["psycopg", "pyarrow", "pymysql"]


@pytest.fixture
def without_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    """The extras' modules cannot be imported (a None in sys.modules makes import fail)."""
    for name in [*EXTRAS, "pyarrow.parquet"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(backends, "_unreachable", {})
    monkeypatch.delenv("CI", raising=False)


@pytest.mark.usefixtures("without_extras")
class TestMissing:
    def test_extra_skips_with_the_reason(self) -> None:
        """import_extra skips, naming the module and the extra that installs it."""
        with pytest.raises(
            pytest.skip.Exception, match=r"pyarrow is not installed \(the 'parquet'"
        ):
            backends.import_extra("pyarrow", "parquet")

    def test_extra_fails_under_ci(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Under CI=true a missing extra fails instead of skipping."""
        monkeypatch.setenv("CI", "true")
        with pytest.raises(pytest.fail.Exception, match="CI=true and psycopg is not installed"):
            backends.import_extra("psycopg", "postgres")

    @pytest.mark.parametrize("backend, driver", [("postgresql", "psycopg"), ("mariadb", "pymysql")])
    def test_driver_skips_its_backend(self, backend: str, driver: str) -> None:
        """A backend whose driver is missing skips, saying so rather than 'unreachable'."""
        with pytest.raises(
            pytest.skip.Exception, match=f"{backend} driver .* not installed.*{driver}"
        ):
            backends.require_server(backend)

    def test_driver_fails_under_ci(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Under CI=true a backend without its driver fails."""
        monkeypatch.setenv("CI", "true")
        with pytest.raises(pytest.fail.Exception, match="CI=true and mariadb driver"):
            backends.require_server("mariadb")


def test_every_module_collects_without_the_extras() -> None:
    """With psycopg, pyarrow and pymysql unimportable, collecting the suite reports no error."""
    blocked = ", ".join(f"{name!r}: None" for name in [*EXTRAS, "pyarrow.parquet"])
    script = (
        f"import sys; sys.modules.update({{{blocked}}}); import pytest; "
        "sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "error" not in done.stdout.splitlines()[-1], done.stdout[-3000:]
