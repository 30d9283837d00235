"""A crash injector: make a job's process die with SIGKILL at a chosen point, for crash tests.

Run the job in a subprocess with the spec in an environment variable (``point:n`` kills it the
n-th time the job passes ``point``), then restart it and check nothing was lost or doubled::

    crash = CrashInjector.from_env("MYJOB_CRASH", points=("before_commit", "after_commit"))
    ...
    crash.passing("before_commit")  # in the writer, a listener, wherever the point is
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence


class CrashInjector:
    """Kills this process with SIGKILL the n-th time ``passing(point)`` is called for ``point``."""

    def __init__(self, spec: str | None, points: Sequence[str], *, source: str = "spec") -> None:
        self.point: str | None = None
        self.remaining = 0
        if spec:
            point, _, count = spec.partition(":")
            if point not in points:
                raise SystemExit(f"{source}={spec!r}: point must be one of {tuple(points)}")
            self.point, self.remaining = point, int(count or 1)

    @classmethod
    def from_env(cls, variable: str, points: Sequence[str]) -> CrashInjector:
        return cls(os.environ.get(variable), points, source=variable)

    def passing(self, point: str) -> None:
        if point == self.point:
            self.remaining -= 1
            if self.remaining <= 0:
                os.kill(os.getpid(), signal.SIGKILL)
