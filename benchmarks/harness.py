"""Side-by-side timing: candidate and baseline run alternately in one process, best of N.

Each benchmark module ``benchmarks/bench_*.py`` defines ``run(quick: bool) -> list[Comparison]``.
Alternating the two (A, B, A, B, ...) and keeping each one's best run cancels most of the noise
of a shared machine; the figure reported is the ratio candidate / baseline. ``alternate`` runs
three or more contenders in turn, round after round, for benchmarks that report medians.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Comparison:
    name: str
    candidate: str
    baseline: str
    candidate_seconds: float
    baseline_seconds: float
    goal: str  # e.g. "ratio <= 1.3"
    goal_ratio: float
    lower_is_better: bool = True
    note: str = ""
    unit: str = "s"  # what candidate_seconds and baseline_seconds count ("s", "M instr")

    @property
    def ratio(self) -> float:
        return self.candidate_seconds / self.baseline_seconds

    @property
    def met(self) -> bool:
        return (
            self.ratio <= self.goal_ratio if self.lower_is_better else self.ratio >= self.goal_ratio
        )


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def side_by_side(
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    *,
    repeats: int = 3,
    setup: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """Best-of-``repeats`` seconds for candidate and baseline, run alternately."""
    best_c = best_b = float("inf")
    for _ in range(repeats):
        if setup:
            setup()
        best_c = min(best_c, timed(candidate))
        if setup:
            setup()
        best_b = min(best_b, timed(baseline))
    return best_c, best_b


def alternate(
    contenders: dict[str, Callable[[], object]],
    *,
    repeats: int = 3,
    setup: Callable[[str], object] | None = None,
    check: Callable[[str], object] | None = None,
    fewer: dict[str, int] | None = None,
) -> dict[str, list[float]]:
    """Each contender's seconds over ``repeats`` rounds, run in turn within every round (A, B,
    C, A, B, C...), so a noisy neighbour hits them all alike. ``setup`` runs untimed before
    each run, ``check`` after it; ``fewer`` gives slow contenders fewer rounds (the first ones)."""
    seconds: dict[str, list[float]] = {label: [] for label in contenders}
    for round_ in range(repeats):
        for label, fn in contenders.items():
            if fewer and round_ >= fewer.get(label, repeats):
                continue
            if setup:
                setup(label)
            seconds[label].append(timed(fn))
            if check:
                check(label)
    return seconds


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
