"""Small statistics over per-round samples.

Verdicts use Student's t over rounds (`interval`): with 3 to 5 rounds a percentile bootstrap
cannot reach beyond the observed range and so claims more certainty than three numbers hold;
t widens the interval by the small-sample factor (4.30 at 3 rounds, 2.78 at 5). Comparisons of
two runs use Welch's t on the logarithms (`ratio_interval`): the ratio head/base is the ratio of
geometric means and its interval allows for each run's own spread. The bootstrap helpers stay
for reference figures. Pure functions of their inputs, so the unit tests can pin them down."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

RESAMPLES = 4000
SEED = 20261202


# Two-sided 95 % quantiles of Student's t by degrees of freedom (a fractional df is rounded
# down, which widens the interval).
T975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    25: 2.060,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}


def t975(df: float) -> float:
    if df < 1:
        return T975[1]
    return T975[max(k for k in T975 if k <= math.floor(df))] if df < 120 else 1.96


def interval(samples: Sequence[float | None]) -> tuple[float, float] | None:
    """95 % interval of the central value over rounds: mean ± t·s/√n. None for an empty sample;
    one sample (an exact measurement) or identical samples are their own interval."""
    values = clean(samples)
    if not values:
        return None
    if len(values) == 1 or min(values) == max(values):
        return (min(values), max(values))
    mean = statistics.fmean(values)
    half = t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return (mean - half, mean + half)


def ratio_interval(
    head: Sequence[float | None], base: Sequence[float | None]
) -> tuple[float, tuple[float, float]] | None:
    """head/base as the ratio of geometric means, with Welch's 95 % interval on the logarithms.
    None unless both samples are non-empty and every value is positive."""
    h, b = clean(head), clean(base)
    if not h or not b or min(h + b) <= 0:
        return None
    lh, lb = [math.log(v) for v in h], [math.log(v) for v in b]
    diff = statistics.fmean(lh) - statistics.fmean(lb)
    vh = statistics.variance(lh) / len(lh) if len(lh) > 1 else 0.0
    vb = statistics.variance(lb) / len(lb) if len(lb) > 1 else 0.0
    se = math.sqrt(vh + vb)
    if se == 0:
        return math.exp(diff), (math.exp(diff), math.exp(diff))
    parts = [(v, len(x) - 1) for v, x in ((vh, lh), (vb, lb)) if v > 0]
    df = se**4 / sum(v**2 / n for v, n in parts)  # Welch-Satterthwaite
    half = t975(df) * se
    return math.exp(diff), (math.exp(diff - half), math.exp(diff + half))


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
