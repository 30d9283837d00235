"""Lease, claim timeout and on_worker_lost of work on Celery workers, set from the command line
or the environment for handlers and launchers built without them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("celery")

from batchline.cli import main
from batchline.errors import ConfigurationError
from batchline.remote import CeleryLauncher, CeleryPartitionHandler
from batchline.remote.settings import CLAIM_TIMEOUT_ENV, LEASE_ENV, ON_WORKER_LOST_ENV

BROKER = "redis://127.0.0.1:6379/0"


def test_unset_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler and a launcher built without lease, claim timeout or on_worker_lost take the
    environment's; values given in Python win; without either, the defaults."""
    for name in (LEASE_ENV, CLAIM_TIMEOUT_ENV, ON_WORKER_LOST_ENV):
        monkeypatch.setenv(name, "")
    assert CeleryPartitionHandler(BROKER).claim_timeout == 120.0
    assert CeleryLauncher(BROKER).claim_timeout == 300.0
    monkeypatch.setenv(LEASE_ENV, "90")
    monkeypatch.setenv(CLAIM_TIMEOUT_ENV, "45")
    monkeypatch.setenv(ON_WORKER_LOST_ENV, "retry")
    handler = CeleryPartitionHandler(BROKER)
    assert (handler.lease, handler.claim_timeout, handler.on_worker_lost) == (90.0, 45.0, "retry")
    assert CeleryPartitionHandler(BROKER, lease=30, on_worker_lost="fail").lease == 30
    launcher = CeleryLauncher(BROKER)
    assert (launcher.lease, launcher.claim_timeout) == (90.0, 45.0)
    assert CeleryLauncher(BROKER, claim_timeout=None).claim_timeout is None


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        (LEASE_ENV, "soon", "is not a number of seconds"),
        (CLAIM_TIMEOUT_ENV, "-3", "must be a number of seconds > 0"),
        (CLAIM_TIMEOUT_ENV, "nan", "must be a number of seconds > 0"),
        (ON_WORKER_LOST_ENV, "maybe", "is not 'fail' or 'retry'"),
    ],
)
def test_a_bad_value_in_the_environment_is_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, said: str
) -> None:
    """A variable that is not what it must be is refused in one line naming it."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=rf"\${name}: .*{said}"):
        CeleryPartitionHandler(BROKER)


def test_the_command_line_sets_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--worker-lease, --claim-timeout and --on-worker-lost reach handlers built in job
    modules (through the environment); a bad choice is a usage error (exit 2)."""
    for name in (LEASE_ENV, CLAIM_TIMEOUT_ENV, ON_WORKER_LOST_ENV):
        monkeypatch.setenv(name, "")  # empty is unset; restored whatever the CLI writes
    repository = f"sqlite:///{tmp_path / 'r.db'}"
    options = ["--worker-lease", "75", "--claim-timeout", "33", "--on-worker-lost", "retry"]
    result = CliRunner().invoke(main, ["-r", repository, *options, "list-jobs"])
    assert result.exit_code == 0, result.output
    handler = CeleryPartitionHandler(BROKER)
    assert (handler.lease, handler.claim_timeout, handler.on_worker_lost) == (75.0, 33.0, "retry")
    bad = CliRunner().invoke(main, ["-r", repository, "--on-worker-lost", "maybe", "list-jobs"])
    assert bad.exit_code == 2
