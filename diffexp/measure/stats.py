"""Statistics of repeated trials: the median with its spread and a seeded bootstrap interval, the interval of a
difference between two samples (independent or paired), and the steady-state checks of a series of timings."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
# A leading step (or repeat) is slow when it exceeds median + k·MAD, and by at least this fraction of the median:
# MAD is 0 for a perfectly steady series, and jitter of a fraction of a percent is not a slow start.
OUTLIER_K = 3.0
OUTLIER_MIN_FRACTION = 0.05


@dataclass(frozen=True)
class Summary:
    """One metric over n trials. The interval is None for a single trial (noise unknown)."""

    median: float
    min: float
    max: float
    mad: float  # median absolute deviation from the median, unscaled, in the metric's unit
    ci95_low: Optional[float]
    ci95_high: Optional[float]
    n: int

    @property
    def noise_known(self) -> bool:
        return self.ci95_low is not None

    def metrics(self, name: str) -> dict[str, float]:
        """`name.min`, `name.mad`, `name.n` and, with n > 1, `name.ci95_low` / `name.ci95_high`."""
        out = {f"{name}.min": self.min, f"{name}.max": self.max, f"{name}.mad": self.mad, f"{name}.n": float(self.n)}
        if self.noise_known:
            out[f"{name}.ci95_low"], out[f"{name}.ci95_high"] = self.ci95_low, self.ci95_high
        return out


def _bootstrap(data: tuple, statistic, paired: bool, seed: int, resamples: int) -> tuple[float, float]:
    """Percentile bootstrap interval through scipy.stats.bootstrap (seeded: the same data give the same interval).

    Percentile, not BCa: BCa's jackknife is undefined for the median of a handful of tied values, which is
    exactly what five repeats of a steady GPU produce."""
    from scipy import stats

    seed_arg = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"
    flat = np.concatenate([np.asarray(d, dtype=float) for d in data])
    if np.all(flat == flat[0]):  # no spread at all: scipy warns and returns NaN; the interval is the point
        value = float(statistic(*[np.asarray(d, dtype=float) for d in data], axis=-1))
        return value, value
    res = stats.bootstrap(
        data,
        statistic,
        n_resamples=resamples,
        vectorized=True,
        paired=paired,
        confidence_level=CONFIDENCE,
        method="percentile",
        **{seed_arg: np.random.default_rng(seed)},
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _median(x, axis=-1):
    return np.median(x, axis=axis)


def summarize(values: Sequence[float], seed: int = SEED, resamples: int = RESAMPLES) -> Summary:
    values = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not values:
        raise ValueError("summarize: no finite values")
    arr = np.asarray(values)
    med = float(np.median(arr))
    low = high = None
    if len(arr) > 1:
        low, high = _bootstrap((arr,), _median, False, seed, resamples)
    return Summary(med, float(arr.min()), float(arr.max()), float(np.median(np.abs(arr - med))), low, high, len(arr))


@dataclass(frozen=True)
class Delta:
    """Candidate relative to baseline, in percent of the baseline's median (+ = candidate larger, i.e. slower)."""

    pct: float
    ci95_low_pct: Optional[float]
    ci95_high_pct: Optional[float]
    n_base: int
    n_cand: int
    paired: bool = False

    @property
    def noise_known(self) -> bool:
        return self.ci95_low_pct is not None


def _ratio_of_medians(b, c, axis=-1):
    return (np.median(c, axis=axis) / np.median(b, axis=axis) - 1.0) * 100.0


def _median_ratio(b, c, axis=-1):
    return (np.median(c / b, axis=axis) - 1.0) * 100.0


def relative_delta(base: Sequence[float], cand: Sequence[float], seed: int = SEED, resamples: int = RESAMPLES) -> Delta:
    """Ratio of medians of two independent samples with a bootstrap interval (each side resampled on its own).
    A side with one value has no spread: the delta is reported without an interval."""
    b, c = np.asarray(base, dtype=float), np.asarray(cand, dtype=float)
    pct = float(_ratio_of_medians(b, c))
    if len(b) < 2 or len(c) < 2:
        return Delta(pct, None, None, len(b), len(c))
    low, high = _bootstrap((b, c), _ratio_of_medians, False, seed, resamples)
    return Delta(pct, low, high, len(b), len(c))


def paired_delta(base: Sequence[float], cand: Sequence[float], seed: int = SEED, resamples: int = RESAMPLES) -> Delta:
    """Median of the per-pair ratios cand_i / base_i (interleaved A/B rounds): drift common to a pair cancels."""
    b, c = np.asarray(base, dtype=float), np.asarray(cand, dtype=float)
    if len(b) != len(c) or not len(b):
        raise ValueError(f"paired_delta: {len(b)} baseline and {len(c)} candidate values")
    pct = float(_median_ratio(b, c))
    if len(b) < 2:
        return Delta(pct, None, None, 1, 1, paired=True)
    low, high = _bootstrap((b, c), _median_ratio, True, seed, resamples)
    return Delta(pct, low, high, len(b), len(c), paired=True)


def leading_outliers(values: Sequence[float], k: float = OUTLIER_K, min_fraction: float = OUTLIER_MIN_FRACTION) -> int:
    """How many values at the start of the series are slow: above median + max(k·MAD, min_fraction·median)."""
    if len(values) < 3:
        return 0
    arr = np.asarray(values, dtype=float)
    med = float(np.median(arr))
    threshold = med + max(k * float(np.median(np.abs(arr - med))), min_fraction * med)
    count = 0
    for v in arr:
        if v <= threshold:
            break
        count += 1
    return count


def settled(history: Sequence[float], tolerance: float) -> bool:
    """Warmup is done when the last two generations' figures differ by at most `tolerance` (a fraction)."""
    if len(history) < 2:
        return False
    a, b = history[-2], history[-1]
    return abs(b - a) <= tolerance * min(a, b)
