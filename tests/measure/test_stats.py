"""The statistics of repeated trials: intervals that hold the median, seeded, and deltas that see the noise."""

from __future__ import annotations

import numpy as np
import pytest

from diffexp.measure import stats


def test_interval_contains_the_median_and_is_seeded():
    values = [1.02, 0.98, 1.00, 1.05, 0.99, 1.01, 1.30]
    s = stats.summarize(values)
    assert s.n == 7 and s.median == pytest.approx(1.01) and s.min == 0.98
    assert s.ci95_low <= s.median <= s.ci95_high
    assert s.ci95_high < 1.30  # the median's interval is not pulled out by the one outlier
    assert s.mad == pytest.approx(0.02)
    assert stats.summarize(values) == s  # same data, same seed: same interval


def test_single_value_has_no_interval_and_identical_values_a_point_interval():
    one = stats.summarize([2.0])
    assert not one.noise_known and "x.ci95_low" not in one.metrics("x") and one.metrics("x")["x.n"] == 1
    same = stats.summarize([2.0, 2.0, 2.0])
    assert (same.ci95_low, same.ci95_high, same.mad) == (2.0, 2.0, 0.0)


def test_relative_delta_interval_covers_a_known_shift():
    rng = np.random.default_rng(1)
    base = 1.0 + 0.01 * rng.standard_normal(12)
    cand = 1.10 * (1.0 + 0.01 * rng.standard_normal(12))
    d = stats.relative_delta(base, cand)
    assert d.ci95_low_pct < 10.0 < d.ci95_high_pct + 1.0
    assert d.ci95_low_pct > 5.0
    assert not stats.relative_delta([1.0], cand).noise_known


def test_paired_delta_cancels_drift_common_to_a_pair():
    drift = np.linspace(1.0, 1.5, 8)  # the machine slows down by half over the session
    base, cand = drift, drift * 1.03
    d = stats.paired_delta(base, cand)
    assert d.paired and d.pct == pytest.approx(3.0)
    assert d.ci95_low_pct == pytest.approx(3.0) and d.ci95_high_pct == pytest.approx(3.0)
    unpaired = stats.relative_delta(base, cand)
    assert unpaired.ci95_high_pct - unpaired.ci95_low_pct > 10  # drift swamps the unpaired interval


def test_leading_outliers_and_settling():
    assert stats.leading_outliers([300.0, 150.0, 101.0, 100.0, 99.0, 100.0]) == 2
    assert stats.leading_outliers([100.4, 100.0, 99.9, 100.1]) == 0  # jitter is not a slow start
    assert stats.leading_outliers([100.0, 100.0, 300.0, 100.0]) == 0  # a late outlier is not a slow start
    assert stats.settled([5.0, 2.0, 1.99], tolerance=0.02)
    assert not stats.settled([5.0, 2.0], tolerance=0.02)
