"""A sweep summary stars its fastest point only when it beats the runner-up beyond the noise."""

from __future__ import annotations

from diffexp.reports.summary import summarize
from diffexp.results import RunResult
from diffexp.tracking.records import RecordedRun


def point(i: int, denoise_s: float, low=None, high=None) -> RecordedRun:
    metrics = {"denoise_s": denoise_s}
    if low is not None:
        metrics.update({"denoise_s.ci95_low": low, "denoise_s.ci95_high": high})
    result = RunResult(denoise_s=denoise_s, e2e_s=denoise_s, peak_mem_gib=1.0)
    return RecordedRun(f"{i:032x}", f"p{i}", "FINISHED", i, "0", {}, {"diffexp.point": str(i)}, result, metrics)


def test_overlapping_intervals_get_no_star_and_separated_ones_do():
    assert summarize([point(0, 1.00, 0.98, 1.03), point(1, 1.01, 0.99, 1.04)], []).fastest is None
    s = summarize([point(0, 1.00, 0.98, 1.01), point(1, 1.10, 1.08, 1.12)], [])
    assert s.fastest is not None and s.fastest.name == "p0"


def test_single_shots_keep_the_lowest_denoise_star():
    assert summarize([point(0, 1.0), point(1, 1.01)], []).fastest.name == "p0"
