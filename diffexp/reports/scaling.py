"""Parallel scaling of a sweep's points against its baseline point: the speed-up (the baseline's median denoise
over the point's, with the 95 % bootstrap interval of the two samples) and the scaling efficiency (the speed-up
over the GPU ratio). Only for a sweep whose points use different GPU counts and that marks a baseline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from diffexp import names
from diffexp.measure import stats
from diffexp.tracking.records import RecordedRun

SPEEDUP, SPEEDUP_CI, EFFICIENCY = "Speed-up ×", "Speed-up 95% CI", "Scaling eff. %"
COLUMNS = [SPEEDUP, SPEEDUP_CI, EFFICIENCY]
BASELINE = "baseline"


@dataclass(frozen=True)
class Scaling:
    speedup: float
    low: Optional[float]  # None: a side is a single shot (noise unknown)
    high: Optional[float]
    efficiency_pct: float


def gpus(run: RecordedRun) -> int:
    value = run.params.get("parallel.num_gpus", "1")
    return int(value) if value.isdigit() else 1


def baseline_of(points: Sequence[RecordedRun]) -> Optional[RecordedRun]:
    """The sweep's finished baseline point, when its points use more than one GPU count."""
    if len({gpus(p) for p in points}) < 2:
        return None
    marked = [p for p in points if p.tags.get(names.SWEEP_BASELINE) == "true"]
    return marked[0] if marked and marked[0].status == "FINISHED" and marked[0].result.denoise_s else None


def scaling(base: Sequence[float], point: Sequence[float], base_gpus: int, point_gpus: int) -> Scaling:
    """Speed-up = median(base) / median(point); its interval from the bootstrap of the ratio of medians."""
    delta = stats.relative_delta(base, point)  # point vs base, in % of the base's median (+ = slower)
    speedup = 1.0 / (1.0 + delta.pct / 100.0)
    low = high = None
    if delta.noise_known:
        low, high = 1.0 / (1.0 + delta.ci95_high_pct / 100.0), 1.0 / (1.0 + delta.ci95_low_pct / 100.0)
    return Scaling(speedup, low, high, 100.0 * speedup * base_gpus / point_gpus)


def scaling_cells(
    points: Sequence[RecordedRun], samples: Mapping[str, Sequence[float]]
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Per point run id, its scaling columns (unrounded; '-' where it did not finish), and the note that says
    against what; empty when the sweep has no baseline to scale against."""
    base = baseline_of(points)
    if base is None:
        return {}, []

    def sample(run: RecordedRun) -> Sequence[float]:  # its repeats, else its one figure
        return samples.get(run.run_id) or ([run.result.denoise_s] if run.result.denoise_s else [])

    base_sample = sample(base)
    cells = {}
    for run in points:
        if run.run_id == base.run_id:
            cells[run.run_id] = {SPEEDUP: repr(1.0), SPEEDUP_CI: BASELINE, EFFICIENCY: repr(100.0)}
            continue
        if run.status != "FINISHED" or not sample(run):
            cells[run.run_id] = {column: "-" for column in COLUMNS}
            continue
        s = scaling(base_sample, sample(run), gpus(base), gpus(run))
        interval = f"{s.low!r}–{s.high!r}" if s.low is not None else "noise unknown"
        cells[run.run_id] = {SPEEDUP: repr(s.speedup), SPEEDUP_CI: interval, EFFICIENCY: repr(s.efficiency_pct)}
    note = (
        f"scaling against point {base.point} (the baseline, {gpus(base)} GPU(s)): speed-up = its median denoise over "
        "the point's (95 % bootstrap interval of the two samples), efficiency = speed-up × its GPUs / the point's"
    )
    return cells, [note]


def rounded_cells(row: dict[str, str]) -> dict[str, str]:
    """The scaling columns as displayed: speed-up and its interval to 2 decimals, efficiency to 1."""
    out = dict(row)
    if out.get(SPEEDUP, "-") != "-":
        out[SPEEDUP] = f"{float(out[SPEEDUP]):.2f}"
        out[EFFICIENCY] = f"{float(out[EFFICIENCY]):.1f}"
    if "–" in out.get(SPEEDUP_CI, ""):
        low, high = out[SPEEDUP_CI].split("–")
        out[SPEEDUP_CI] = f"[{float(low):.2f}, {float(high):.2f}]"
    return out
