"""Verdicts that know the noise: the candidate's change with its 95 % interval, from two samples of a metric
(repeats or replicates, or the rounds of a paired A/B), and a verdict that can say "within noise".

    faster / slower   the interval lies entirely beyond −min_effect / +min_effect
    within noise      the interval lies entirely inside ±min_effect
    ambiguous         the interval straddles ±min_effect: more trials would tell
    noise unknown     a side is a single shot (no interval exists)

min_effect is the guide's 2 % unless told otherwise. Shown beside the guide / sglang rules, which stay unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from diffexp.compare.rules import GUIDE_TOLERANCE_PCT
from diffexp.measure import stats
from diffexp.tracking.samples import recorded_sample

FASTER, SLOWER, WITHIN_NOISE, AMBIGUOUS, NOISE_UNKNOWN = (
    "faster",
    "slower",
    "within noise",
    "ambiguous",
    "noise unknown",
)
MIN_EFFECT_PCT = GUIDE_TOLERANCE_PCT
# Which metric each comparison row's sample is read from (MLflow series of repeats / replicates).
NOISE_METRIC = "denoise_s"


def judge(delta: stats.Delta, min_effect_pct: float = MIN_EFFECT_PCT) -> str:
    if not delta.noise_known:
        return NOISE_UNKNOWN
    low, high = delta.ci95_low_pct, delta.ci95_high_pct
    if low > min_effect_pct:
        return SLOWER
    if high < -min_effect_pct:
        return FASTER
    if low >= -min_effect_pct and high <= min_effect_pct:
        return WITHIN_NOISE
    return AMBIGUOUS


def slower_by_at_most(delta: stats.Delta, limit_pct: float) -> Optional[bool]:
    """Whether the candidate is at most `limit_pct` slower than the baseline (a one-sided bound: faster is within
    it too): True when the whole 95 % interval lies at or below +limit_pct, False when it lies entirely above it,
    None when it straddles it or no interval exists (the noise too wide, or unknown)."""
    if not delta.noise_known:
        return None
    if delta.ci95_high_pct <= limit_pct:
        return True
    if delta.ci95_low_pct > limit_pct:
        return False
    return None


@dataclass(frozen=True)
class NoiseVerdict:
    metric: str
    delta: stats.Delta
    verdict: str
    min_effect_pct: float

    def text(self) -> str:
        d = self.delta
        interval = (
            f"[{d.ci95_low_pct:+.1f}, {d.ci95_high_pct:+.1f}] %" if d.noise_known else "no interval (single shot)"
        )
        kind = f"{d.n_base} paired rounds" if d.paired else f"n={d.n_base} vs {d.n_cand}"
        return (
            f"{self.metric} {d.pct:+.1f} % {interval}, {kind}, min effect ±{self.min_effect_pct:g} % → {self.verdict}"
        )


def verdict(
    base: Sequence[float],
    cand: Sequence[float],
    metric: str = NOISE_METRIC,
    min_effect_pct: float = MIN_EFFECT_PCT,
    paired: bool = False,
    seed: int = stats.SEED,
) -> NoiseVerdict:
    """Bootstrap interval of the ratio of medians (independent samples) or of the median paired ratio."""
    delta = (stats.paired_delta if paired else stats.relative_delta)(base, cand, seed=seed)
    return NoiseVerdict(metric, delta, judge(delta, min_effect_pct), min_effect_pct)


def machine_note(tags: dict[str, str]) -> str:
    """The GPU's state beside the figures: throttled (and why) or not, or not sampled."""
    if "gpu.throttled" not in tags:
        return "GPU not sampled"
    if tags["gpu.throttled"] == "true":
        why = tags.get("gpu.throttle", "none")
        return "GPU THROTTLED (" + (why if why != "none" else "clocks fell") + ")"
    return "GPU not throttled"


def compare_runs(
    client, base_run, cand_run, metric: str = NOISE_METRIC, min_effect_pct: float = MIN_EFFECT_PCT
) -> tuple[Optional[NoiseVerdict], list[str]]:
    """(verdict, lines to show) for two recorded runs (diffexp.tracking.records.RecordedRun); None when a side has
    no figure for the metric."""
    base, cand = recorded_sample(client, base_run.run_id, metric), recorded_sample(client, cand_run.run_id, metric)
    if not base or not cand:
        return None, [f"noise: no {metric} on " + ("the baseline" if not base else "the candidate")]
    v = verdict(base, cand, metric, min_effect_pct)
    lines = [
        f"noise: {v.text()}",
        f"machine: baseline {machine_note(base_run.tags)}; candidate {machine_note(cand_run.tags)}",
    ]
    return v, lines


def noise_report(comparisons, store, min_effect_pct: float = MIN_EFFECT_PCT) -> tuple[list[str], list[str]]:
    """The noise verdict of each comparison (its label) and the lines to show beside the tables."""
    verdicts, lines = [], []
    for label, c in comparisons:
        prefix = f"{label}: " if label else ""
        if c.base.run is None or c.cand.run is None:
            verdicts.append(NOISE_UNKNOWN)
            lines.append(f"{prefix}noise: {NOISE_UNKNOWN} (a perf dump is a single shot)")
            continue
        v, more = compare_runs(store, c.base.run, c.cand.run, min_effect_pct=min_effect_pct)
        verdicts.append(v.verdict if v else NOISE_UNKNOWN)
        lines += [prefix + line for line in more]
    return verdicts, lines
