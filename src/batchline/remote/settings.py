"""The settings of work on Celery workers that operators change without touching job code.

A ``CeleryPartitionHandler`` or ``CeleryLauncher`` built without a value takes it from these
environment variables, which the command line's options of the same names set
(``batchline --worker-lease 120 --claim-timeout 600 --on-worker-lost retry start ...``), and
else the default. A value that is not what it must be is refused in one line naming it.
"""

from __future__ import annotations

import math
import os

from batchline.errors import ConfigurationError

LEASE_ENV = "BATCHLINE_WORKER_LEASE"
CLAIM_TIMEOUT_ENV = "BATCHLINE_CLAIM_TIMEOUT"
ON_WORKER_LOST_ENV = "BATCHLINE_ON_WORKER_LOST"

DEFAULT_LEASE = 60.0
DEFAULT_CLAIM_TIMEOUT = 300.0
# The partition handler's own default: partitions are sent by a manager that watches them.
DEFAULT_PARTITION_CLAIM_TIMEOUT = 120.0


def seconds(given: float | None, env: str, default: float) -> float:
    """``given``, else the variable ``env``, else ``default``: seconds > 0."""
    if given is not None:
        value: float = given
        where = "the value given"
    else:
        text = os.environ.get(env, "").strip()
        if not text:
            return default
        where = f"${env}"
        try:
            value = float(text)
        except ValueError:
            raise ConfigurationError(f"{where}: {text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{where}: {value!r} must be a number of seconds > 0")
    return value


def on_worker_lost(given: str | None) -> str:
    """``given``, else ``$BATCHLINE_ON_WORKER_LOST``, else "fail": "fail" or "retry"."""
    value = given if given is not None else os.environ.get(ON_WORKER_LOST_ENV, "").strip()
    value = value or "fail"
    if value not in ("fail", "retry"):
        where = "on_worker_lost" if given is not None else f"${ON_WORKER_LOST_ENV}"
        raise ConfigurationError(f"{where}: {value!r} is not 'fail' or 'retry'")
    return value
