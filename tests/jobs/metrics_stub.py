"""`python -m tests.jobs.metrics_stub ...` runs the batchline command with a stand-in for the
observability work's ``batchline.observability.prometheus`` (not written yet), so the web's
/metrics hook can be tested: it mounts the route only when that module exists."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from typing import Any


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def exposition(engine: Any) -> tuple[bytes, str]:
    running = len(engine.running_executions())
    return f"batchline_running_executions {running}\n".encode(), "text/plain; version=0.0.4"


if __name__ == "__main__":
    _module("batchline.observability")
    _module("batchline.observability.prometheus", exposition=exposition)
    from batchline.cli import main

    sys.exit(main(prog_name="batchline"))
