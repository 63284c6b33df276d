"""Latency samples summarised and printed as a table of milliseconds with ratios."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles and mean of a set of durations, in seconds."""

    count: int
    p50: float
    p95: float
    p99: float
    mean: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        """Summarise ``seconds`` (at least two samples)."""
        cuts = statistics.quantiles(seconds, n=100, method="inclusive")
        return cls(len(seconds), cuts[49], cuts[94], cuts[98], statistics.fmean(seconds))


def ratio(value: float, baseline: float) -> str:
    """Return ``value / baseline`` as ``x1.23``, or ``n/a`` for a zero baseline."""
    return f"x{value / baseline:.2f}" if baseline > 0 else "n/a"


def latency_table(rows: Sequence[tuple[str, Latency]], baseline: Latency) -> str:
    """Format rows of latencies in ms, each with its p50 and mean ratio to ``baseline``."""
    name_width = max(len(name) for name, _ in rows)
    header = (
        f"{'':<{name_width}}  {'n':>5}  {'p50 ms':>8}  {'p95 ms':>8}  {'p99 ms':>8}"
        f"  {'mean ms':>8}  {'p50 ratio':>9}  {'mean ratio':>10}"
    )
    lines = [header, "-" * len(header)]
    for name, figures in rows:
        lines.append(
            f"{name:<{name_width}}  {figures.count:>5}  {figures.p50 * 1e3:>8.3f}"
            f"  {figures.p95 * 1e3:>8.3f}  {figures.p99 * 1e3:>8.3f}  {figures.mean * 1e3:>8.3f}"
            f"  {ratio(figures.p50, baseline.p50):>9}  {ratio(figures.mean, baseline.mean):>10}"
        )
    return "\n".join(lines)


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile (``fraction`` 0.5 for p50); ``inf`` samples count.

    For figures with few samples or with ``inf`` for "never": ``statistics.quantiles``
    interpolates, which needs two finite samples.
    """
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
