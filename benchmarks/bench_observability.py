"""Instrumentation's cost: the chunk-overhead job with an observer against the same job without.

The job is ``bench_chunk_overhead``'s (a chunk step of trivial items, one SQLite commit per chunk
of 1000). The candidates observe it through:

- ``OpenTelemetryObserver`` on the API alone (no SDK installed as the global provider: every
  span and instrument is the API's no-op), what a user pays who installs the extra but has not
  configured OpenTelemetry;
- ``OpenTelemetryObserver`` on an SDK with no exporter (spans and metrics are really recorded,
  then dropped), the cost of the recording itself;
- ``PrometheusObserver`` on a registry of its own.

The baseline is the same job on an Engine with no observer (the runtime carries None); a
control row compares two unobserved engines, the noise floor. The observers work per chunk and
per step, never per item (about 3 us per chunk in a micro-benchmark), so the goal is 5%.

Wall time on a shared 2-core machine moves by more than the 5% this goal allows, so the SDK
case is also counted in instructions under valgrind's callgrind (when valgrind is installed):
the same job in a child process, the instructions of the timed run alone (a run of the same
process that stops after the warm-up is subtracted, so imports and set-up do not count), with
the observer against without. Instruction counts do not depend on what else the machine runs.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from batchline import Engine
from benchmarks.bench_chunk_overhead import with_batchline
from benchmarks.harness import Comparison, side_by_side

GOAL = 1.05


def _observers() -> list[tuple[str, Callable[[], object]]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import CollectorRegistry

    from batchline.observability.otel import OpenTelemetryObserver
    from batchline.observability.prometheus import PrometheusObserver

    return [
        # An A/A control: the same job on two engines, neither observed. Its ratio is the
        # noise floor of this machine; read the others against it.
        ("control: a second engine, no observer", lambda: None),
        ("OpenTelemetryObserver, API only (no-op)", OpenTelemetryObserver),
        (
            "OpenTelemetryObserver, SDK without exporter",
            lambda: OpenTelemetryObserver(
                tracer_provider=TracerProvider(), meter_provider=MeterProvider()
            ),
        ),
        ("PrometheusObserver", lambda: PrometheusObserver(CollectorRegistry())),
    ]


def _child(variant: str, n: int) -> None:
    """One job run of ``n`` items after a warm-up, observed by the SDK or not: callgrind's
    subject."""
    observers: list[object] = []
    if variant == "sdk":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

        from batchline.observability.otel import OpenTelemetryObserver

        observers.append(
            OpenTelemetryObserver(tracer_provider=TracerProvider(), meter_provider=MeterProvider())
        )
    with tempfile.TemporaryDirectory(prefix="bench-obs-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        with Engine(url, observers=observers) as engine:
            with_batchline(engine, 20_000, 1)
            if n:
                with_batchline(engine, n, 2)


def _instructions(variant: str, n: int) -> int:
    """Instructions callgrind counted in a child process running ``_child(variant, n)``."""
    root = Path(__file__).resolve().parent.parent
    child = [sys.executable, "-m", "benchmarks.bench_observability", variant, str(n)]
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *child],
        cwd=root,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no instruction count: {done.stderr[-500:]}")
    return int(found.group(1))


def _counted(quick: bool) -> list[Comparison]:
    if shutil.which("valgrind") is None:
        print("valgrind not installed: the instruction-count row is left out")
        return []
    n = 20_000 if quick else 200_000
    runs = {v: _instructions(v, n) - _instructions(v, 0) for v in ("sdk", "none")}
    return [
        Comparison(
            name=f"instrumentation ({n:,} items, chunk 1000), instructions under callgrind",
            candidate="OpenTelemetryObserver, SDK without exporter",
            baseline="same job, no observer",
            candidate_seconds=runs["sdk"] / 1e6,
            baseline_seconds=runs["none"] / 1e6,
            goal=f"ratio <= {GOAL}",
            goal_ratio=GOAL,
            note="instructions of the timed run alone (warm-up-only run subtracted)",
            unit="M instr",
        )
    ]


def run(quick: bool) -> list[Comparison]:
    n = 50_000 if quick else 1_000_000
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-obs-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        runs = itertools.count(1)
        with Engine(url) as bare:
            for label, make in _observers():
                made = make()
                with Engine(url, observers=[made] if made is not None else []) as observed:
                    # One untimed run each first: a fresh engine compiles its statements.
                    with_batchline(observed, n // 10, next(runs))
                    with_batchline(bare, n // 10, next(runs))
                    cand, base = side_by_side(
                        lambda observed=observed: with_batchline(observed, n, next(runs)),  # type: ignore[misc]
                        lambda: with_batchline(bare, n, next(runs)),
                        repeats=3 if quick else 15,
                    )
                results.append(
                    Comparison(
                        name=f"instrumentation ({n:,} items, chunk 1000)",
                        candidate=label,
                        baseline="same job, no observer",
                        candidate_seconds=cand,
                        baseline_seconds=base,
                        goal=f"ratio <= {GOAL}",
                        goal_ratio=GOAL,
                        note="events per chunk and step, none per item",
                    )
                )
    return results + _counted(quick)


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]))
