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
"""

from __future__ import annotations

import itertools
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
    return results
