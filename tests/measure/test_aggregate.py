"""Repeats and replicates folded into one RunResult: medians, spreads, series, steady-state tags."""

from __future__ import annotations

import pytest

from diffexp.measure.aggregate import fold_repeats, fold_replicates, sample_of
from diffexp.results import RunResult


def shot(denoise_s: float, steps=(10.0, 10.0, 10.0), gpu_throttled: str = "false") -> RunResult:
    return RunResult(
        denoise_s=denoise_s,
        denoise_step_ms=list(steps),
        e2e_s=denoise_s + 0.5,
        stages_s={"e2e": denoise_s + 0.5, "load": 3.0},
        extra_metrics={"gpu.sm_mhz_min": 1900.0 - denoise_s},
        tags={"gpu.throttled": gpu_throttled, "gpu.throttle": "power" if gpu_throttled == "true" else "none"},
    )


def test_repeats_fold_into_medians_with_series_and_intervals():
    folded = fold_repeats([shot(1.3, (40.0, 10.0, 10.0, 10.0)), shot(1.0), shot(1.1), shot(1.05), shot(1.02)])
    assert folded.denoise_s == pytest.approx(1.05)
    assert folded.series()["denoise_s_series"] == [1.3, 1.0, 1.1, 1.05, 1.02]
    m = folded.metrics()
    assert m["denoise_s.n"] == 5 and m["denoise_s.min"] == 1.0
    assert m["denoise_s.ci95_low"] <= m["denoise_s"] <= m["denoise_s.ci95_high"]
    assert folded.tags["noise"] == "repeats=5"
    # The first generation's step 0 and the first repeat are slow: said, not averaged in silently.
    assert folded.tags["steady_state"] == "slow_start"
    assert m["steady_state.slow_leading_steps"] == 1 and m["steady_state.slow_leading_repeats"] == 1
    assert RunResult.from_dict(folded.to_dict()).metrics() == m  # metrics.json round-trips


def test_single_shot_is_noise_unknown():
    folded = fold_repeats([shot(1.0)])
    assert folded.tags["noise"] == "unknown" and "denoise_s.ci95_low" not in folded.metrics()


def test_replicates_give_between_and_within_spread():
    reps = [fold_repeats([shot(v), shot(v + 0.01), shot(v + 0.02)]) for v in (1.0, 1.2, 1.1)]
    reps[1].tags["gpu.throttled"], reps[1].tags["gpu.throttle"] = "true", "power"
    agg = fold_replicates(reps)
    assert agg.denoise_s == pytest.approx(1.11)
    m = agg.metrics()
    assert m["denoise_s.n"] == 3 and m["denoise_s.within.n"] == 9
    assert m["denoise_s.mad"] > m["denoise_s.within.mad"]  # between processes > within one
    assert agg.series()["denoise_s_replicate_series"] == pytest.approx([1.01, 1.21, 1.11])
    assert [r["replicate"] for r in agg.repeats] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert agg.tags["gpu.throttled"] == "true" and agg.tags["gpu.throttled_replicates"] == "1"
    assert agg.extra_metrics["gpu.sm_mhz_min"] == pytest.approx(1900.0 - 1.22)  # the lowest, not the median
    assert sample_of(agg) == pytest.approx([1.01, 1.21, 1.11])
    assert agg.tags["noise"] == "replicates=3"


def test_an_invalid_replicate_invalidates_the_aggregate():
    bad = RunResult(valid=False, invalid_reason="fell back")
    agg = fold_replicates([fold_repeats([shot(1.0)]), bad])
    assert not agg.valid and "replicate 1: fell back" in agg.invalid_reason
