"""The two regression rules a comparison can apply, as pure functions of (baseline, candidate).

guide:  the benchmark guide's "no regression in denoise latency vs. previous baseline (allow ±2%)";
        only the denoise row decides, the others are shown with the same ±2 % reading.
sglang: SGLang 0.5.23 benchmarks/compare_perf.py: a stage is slower when it exceeds
        max(base × 1.10, base + 120 ms) and faster below min(base × 0.90, base − 120 ms); the E2E row
        uses ±2 % of the baseline. Any slower row is a regression.
"""

from __future__ import annotations

REGRESSION, IMPROVEMENT, NEUTRAL = "regression", "improvement", "neutral"
RULES = ("guide", "sglang")

GUIDE_TOLERANCE_PCT = 2.0
# compare_perf.py's defaults (get_perf_status_emoji) and its E2E threshold (_get_status_emoji_from_diff_percent).
SGLANG_REL_TOL = 0.1
SGLANG_MIN_ABS_TOL_MS = 120.0
SGLANG_E2E_PCT = 2.0


def delta(base: float, new: float) -> tuple[float, float]:
    """(new − base, percent of base); 0 % for a zero baseline, as compare_perf does."""
    diff = new - base
    return diff, (diff / base * 100) if base != 0 else 0.0


def by_percent(base: float, new: float, tolerance_pct: float) -> str:
    _, pct = delta(base, new)
    if pct > tolerance_pct:
        return REGRESSION
    if pct < -tolerance_pct:
        return IMPROVEMENT
    return NEUTRAL


def sglang_stage(
    base_ms: float, new_ms: float, rel_tol: float = SGLANG_REL_TOL, min_abs_tol_ms: float = SGLANG_MIN_ABS_TOL_MS
) -> str:
    upper = max(base_ms * (1 + rel_tol), base_ms + min_abs_tol_ms)
    lower = min(base_ms * (1 - rel_tol), base_ms - min_abs_tol_ms)
    if new_ms > upper:
        return REGRESSION
    if new_ms < lower:
        return IMPROVEMENT
    return NEUTRAL


def classify(rule: str, kind: str, base: float, new: float) -> str:
    """Speed verdict of one row. kind: denoise | stage | e2e | info (memory, medians: never gating)."""
    if rule == "guide" or kind == "info":
        return by_percent(base, new, GUIDE_TOLERANCE_PCT)
    if kind == "e2e":
        return by_percent(base, new, SGLANG_E2E_PCT)
    return sglang_stage(base, new)


def gates(rule: str, kind: str) -> bool:
    """Whether a row's regression fails the comparison."""
    if rule == "guide":
        return kind == "denoise"
    return kind in ("denoise", "stage", "e2e")


# compare_perf.py's status marks, for reading its output back (tests) and showing ours beside it.
SGLANG_STAGE_EMOJI = {REGRESSION: "🔴", IMPROVEMENT: "🟢", NEUTRAL: "⚪️"}
SGLANG_E2E_EMOJI = {REGRESSION: "❌", IMPROVEMENT: "✅", NEUTRAL: "⚪️"}
