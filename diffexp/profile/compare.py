"""compare_traces: before/after/delta tables by category, kernel and step for two analysed traces."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from diffexp.profile.analysis import TraceAnalysis, analyze_trace

DELTA_COLUMNS = ["before_ms", "after_ms", "delta_ms", "delta_pct"]


@dataclass(frozen=True)
class TraceComparison:
    """Two analyses and their differences; delta = after − before, delta_pct relative to before (NaN if new)."""

    before: TraceAnalysis
    after: TraceAnalysis
    categories: pd.DataFrame  # category, before_ms, after_ms, delta_ms, delta_pct
    kernels: pd.DataFrame  # name, category, before_ms, after_ms, delta_ms, delta_pct, before_count, after_count
    totals: pd.DataFrame  # metric (gpu_ms, busy_ms, idle_ms, window_ms, step_gpu_ms_mean), before/after/delta


def compare_traces(before: TraceAnalysis | Path | str, after: TraceAnalysis | Path | str) -> TraceComparison:
    """Compare two traces; paths are analysed with the default categories and step patterns."""
    first = before if isinstance(before, TraceAnalysis) else analyze_trace(before)
    second = after if isinstance(after, TraceAnalysis) else analyze_trace(after)
    return TraceComparison(
        before=first,
        after=second,
        categories=_category_delta(first, second),
        kernels=_kernel_delta(first, second),
        totals=_totals_delta(first, second),
    )


def _with_delta(table: pd.DataFrame) -> pd.DataFrame:
    table["delta_ms"] = table["after_ms"] - table["before_ms"]
    before = table["before_ms"].to_numpy(dtype=np.float64)
    table["delta_pct"] = np.where(before > 0, 100.0 * table["delta_ms"] / np.where(before > 0, before, 1.0), np.nan)
    return table


def _category_delta(first: TraceAnalysis, second: TraceAnalysis) -> pd.DataFrame:
    merged = pd.merge(
        first.categories[["category", "gpu_ms"]].rename(columns={"gpu_ms": "before_ms"}),
        second.categories[["category", "gpu_ms"]].rename(columns={"gpu_ms": "after_ms"}),
        on="category",
        how="outer",
    ).fillna({"before_ms": 0.0, "after_ms": 0.0})
    merged = _with_delta(merged)
    merged["_size"] = merged[["before_ms", "after_ms"]].max(axis=1)
    merged = merged.sort_values(["_size", "category"], ascending=[False, True], ignore_index=True)
    return merged[["category", *DELTA_COLUMNS]]


def _kernel_delta(first: TraceAnalysis, second: TraceAnalysis) -> pd.DataFrame:
    """Every kernel of either trace, largest (of before and after) first."""
    columns = ["name", "category", "total_ms", "count"]
    merged = pd.merge(
        first.kernels[columns].rename(columns={"total_ms": "before_ms", "count": "before_count"}),
        second.kernels[columns].rename(columns={"total_ms": "after_ms", "count": "after_count"}),
        on=["name", "category"],
        how="outer",
    ).fillna({"before_ms": 0.0, "after_ms": 0.0, "before_count": 0, "after_count": 0})
    merged = _with_delta(merged)
    merged[["before_count", "after_count"]] = merged[["before_count", "after_count"]].astype(np.int64)
    merged["_size"] = merged[["before_ms", "after_ms"]].max(axis=1)
    merged = merged.sort_values(["_size", "name"], ascending=[False, True], ignore_index=True)
    return merged[["name", "category", *DELTA_COLUMNS, "before_count", "after_count"]]


def _totals_delta(first: TraceAnalysis, second: TraceAnalysis) -> pd.DataFrame:
    def totals(analysis: TraceAnalysis) -> dict[str, float]:
        step_mean = float(analysis.steps["gpu_ms"].mean()) if len(analysis.steps) else np.nan
        return {
            "gpu_ms": analysis.gpu_ms,
            "busy_ms": analysis.busy_ms,
            "idle_ms": analysis.idle_ms,
            "window_ms": analysis.window_ms,
            "step_gpu_ms_mean": step_mean,
        }

    table = pd.DataFrame(
        {"metric": list(totals(first)), "before_ms": totals(first).values(), "after_ms": totals(second).values()}
    )
    return _with_delta(table)[["metric", *DELTA_COLUMNS]]
