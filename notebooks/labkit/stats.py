"""Small statistics over per-round samples: the median, a bootstrap 95 % interval of it, and a
bootstrap interval of the ratio of two medians (used to compare two runs).

Pure functions of their inputs (a fixed seed makes the bootstrap repeatable), so the report of a
given set of samples is always the same and the unit tests can pin it down."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

RESAMPLES = 4000
SEED = 20261202


def clean(samples: Sequence[float | None]) -> list[float]:
    """The finite numbers of a sample (a missing or NaN round is not a zero)."""
    return [float(s) for s in samples if s is not None and math.isfinite(float(s))]


def median(samples: Sequence[float]) -> float | None:
    values = clean(samples)
    return statistics.median(values) if values else None


def _percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default), q in [0, 1]."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bootstrap_median_ci(
    samples: Sequence[float], level: float = 0.95, resamples: int = RESAMPLES
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the median; None for an empty sample. One sample (an
    exact measurement such as a byte count) is its own interval."""
    values = clean(samples)
    if not values:
        return None
    if len(values) == 1 or min(values) == max(values):
        return (values[0], values[0]) if len(values) == 1 else (min(values), max(values))
    rng = random.Random(SEED)  # noqa: S311 - a repeatable bootstrap, not a secret
    n = len(values)
    medians = sorted(statistics.median(rng.choices(values, k=n)) for _ in range(resamples))
    tail = (1 - level) / 2
    return (_percentile(medians, tail), _percentile(medians, 1 - tail))


def ratio_of_medians_ci(
    head: Sequence[float], base: Sequence[float], level: float = 0.95, resamples: int = RESAMPLES
) -> tuple[float, tuple[float, float]] | None:
    """median(head) / median(base) and a bootstrap interval of that ratio, each sample resampled
    on its own. None when either sample is empty or the base median is zero."""
    h, b = clean(head), clean(base)
    if not h or not b or statistics.median(b) == 0:
        return None
    point = statistics.median(h) / statistics.median(b)
    rng = random.Random(SEED)  # noqa: S311 - a repeatable bootstrap, not a secret
    ratios = []
    for _ in range(resamples):
        denominator = statistics.median(rng.choices(b, k=len(b)))
        if denominator != 0:
            ratios.append(statistics.median(rng.choices(h, k=len(h))) / denominator)
    if not ratios:
        return None
    ratios.sort()
    tail = (1 - level) / 2
    return point, (_percentile(ratios, tail), _percentile(ratios, 1 - tail))


def half_width_share(ci: tuple[float, float] | None, centre: float | None) -> float | None:
    """Half the interval's width over its median: 0.1 means ±10 %."""
    if ci is None or centre is None or centre == 0:
        return None
    return (ci[1] - ci[0]) / 2 / abs(centre)
