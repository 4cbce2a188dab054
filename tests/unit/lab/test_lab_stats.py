from __future__ import annotations

import math

from labkit import stats


def test_an_empty_or_all_missing_sample_has_no_median_and_no_interval() -> None:
    assert stats.median([]) is None
    assert stats.bootstrap_median_ci([]) is None
    assert stats.bootstrap_median_ci([None, math.nan]) is None


def test_one_exact_measurement_is_its_own_interval() -> None:
    assert stats.bootstrap_median_ci([80.0]) == (80.0, 80.0)


def test_the_interval_holds_the_median_and_stays_within_the_samples() -> None:
    samples = [10.0, 11.0, 12.0, 10.5, 11.5]
    low, high = stats.bootstrap_median_ci(samples)  # type: ignore[misc]
    assert 10.0 <= low <= stats.median(samples) <= high <= 12.0  # type: ignore[operator]
    assert low < high


def test_the_interval_is_repeatable_for_the_same_samples() -> None:
    samples = [3.1, 2.9, 3.4, 3.0]
    assert stats.bootstrap_median_ci(samples) == stats.bootstrap_median_ci(samples)


def test_the_interval_narrows_as_the_spread_shrinks() -> None:
    wide = stats.bootstrap_median_ci([8.0, 10.0, 12.0, 9.0, 11.0])
    narrow = stats.bootstrap_median_ci([9.8, 10.0, 10.2, 9.9, 10.1])
    assert wide is not None and narrow is not None
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_ratio_of_medians_of_a_clear_slowdown_excludes_one() -> None:
    base = [100.0, 102.0, 98.0, 101.0, 99.0]
    head = [150.0, 149.0, 152.0, 151.0, 148.0]
    point, (low, high) = stats.ratio_of_medians_ci(head, base)  # type: ignore[misc]
    assert point == 1.5
    assert 1 < low <= point <= high


def test_ratio_of_overlapping_samples_includes_one() -> None:
    found = stats.ratio_of_medians_ci([99.0, 103.0, 97.0], [100.0, 96.0, 104.0])
    assert found is not None
    assert found[1][0] <= 1 <= found[1][1]


def test_no_ratio_against_an_empty_or_zero_base() -> None:
    assert stats.ratio_of_medians_ci([1.0], []) is None
    assert stats.ratio_of_medians_ci([1.0], [0.0, 0.0]) is None


def test_half_width_share() -> None:
    assert stats.half_width_share((90.0, 110.0), 100.0) == 0.1
    assert stats.half_width_share(None, 100.0) is None


def test_t_interval_over_rounds_is_wider_than_the_observed_range_for_three_rounds() -> None:
    low, high = stats.interval([3.16, 3.24, 6.75])  # type: ignore[misc]
    assert low < 3.16 and high > 6.75


def test_t_interval_of_an_exact_or_empty_sample() -> None:
    assert stats.interval([80.0]) == (80.0, 80.0)
    assert stats.interval([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert stats.interval([]) is None


def test_t_interval_narrows_with_more_rounds() -> None:
    three = stats.interval([9.0, 10.0, 11.0])
    five = stats.interval([9.0, 10.0, 11.0, 9.0, 11.0])
    assert three is not None and five is not None
    assert five[1] - five[0] < three[1] - three[0]


def test_welch_ratio_flags_a_clear_slowdown_and_not_noise() -> None:
    slow = stats.ratio_interval([0.2226, 0.2768, 0.2708], [0.3872, 0.4373, 0.4270])
    assert slow is not None and slow[1][1] < 1
    noise = stats.ratio_interval([2.32, 2.84, 2.81], [6.75, 3.24, 3.16])
    assert noise is not None and noise[1][0] <= 1 <= noise[1][1]


def test_welch_ratio_needs_positive_samples() -> None:
    assert stats.ratio_interval([1.0, -1.0], [1.0, 2.0]) is None
    assert stats.ratio_interval([2.0], [1.0]) == (2.0, (2.0, 2.0))
