"""What a benchmark reports: a figure of ours beside a baseline measured in the same run, and their ratio."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Figure:
    """``ours`` and ``baseline`` in the same unit. ``higher_is_better`` sets which way the ratio reads:
    the ratio is always "how we compare to the baseline", above 1 meaning better."""

    section: str
    name: str
    ours: float
    baseline: float | None
    unit: str
    higher_is_better: bool = True
    goal: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.baseline or not self.ours:
            return None
        return self.ours / self.baseline if self.higher_is_better else self.baseline / self.ours


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)
    levers: list[tuple[str, str, str]] = field(default_factory=list)  # (lever, measured, kept or not)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def lever(self, name: str, measured: str, verdict: str) -> None:
        self.levers.append((name, measured, verdict))


@dataclass
class Stopwatch:
    seconds: float = 0.0


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    watch = Stopwatch()
    started = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - started


#: Interleaved rounds of ours and the baseline per figure where the two are timed apart (the median ratio is
#: kept): on a shared 2-core machine one round's ratio swung by a fifth, and more, between runs.
ROUNDS = 3


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)
