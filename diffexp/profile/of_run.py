"""A profiled run's own profile, read once the engine is done (in-process, a parallel launcher's rank 0, SGLang,
nsys): the engine leaves the torch trace or the nsys report among its artifacts; this turns it into tables and
charts under <run dir>/profile and `profile.*` metrics. Never fails the run: the raw profile stays either way."""

from __future__ import annotations

import logging
from pathlib import Path

from diffexp.config.schema import Config
from diffexp.errors import DiffexpError
from diffexp.results import RunResult

log = logging.getLogger(__name__)

# The artifacts the engines leave to analyse (engines/profiling.py writes them under the same names).
TRACE_FILE, NSYS_REPORT = "trace_file", "nsys_report"


def analyze_trace_into(trace: Path, out_dir: Path, categories: str | None) -> dict[str, float]:
    """The torch trace's analysis written to out_dir; returns its summary metrics."""
    from diffexp.profile import analyze_trace, summary_metrics, write_report

    try:
        analysis = analyze_trace(trace, categories=categories)
    except DiffexpError as exc:
        # A CPU-only run has no GPU kernels to rank: keep the trace, skip the GPU-time analysis.
        log.warning("trace kept, GPU-time analysis skipped: %s", exc)
        return {}
    write_report(analysis, out_dir)
    return summary_metrics(analysis)


def _nsys_into(report: Path, out_dir: Path, cfg: Config) -> dict[str, float]:
    from diffexp.profile.categories import load_categories
    from diffexp.profile.nsys import category_breakdown, export_sqlite, read_activities, write_breakdown

    table = category_breakdown(
        read_activities(export_sqlite(report)),
        load_categories(cfg.profile.categories),
        cfg.profile.unprofiled_elapsed_s,
    )
    write_breakdown(table, out_dir)
    return {
        f"profile.nsys.{r.category.replace('(', '_').replace(')', '')}_s": float(r.elapsed_s)
        for r in table.itertuples()
    }


def analyze_run_profile(cfg: Config, result: RunResult, run_dir: Path) -> None:
    """Add the profile's metrics and its `profile/` folder to `result`, from what the engine left to analyse."""
    trace, report = result.artifacts.pop(TRACE_FILE, None), result.artifacts.get(NSYS_REPORT)
    out_dir = run_dir / "profile"
    try:
        if trace is not None:
            metrics = analyze_trace_into(Path(trace), out_dir, cfg.profile.categories)
        elif report is not None:
            metrics = _nsys_into(Path(report), out_dir, cfg)
        else:
            return
    except (DiffexpError, OSError) as exc:
        log.warning("profile analysis skipped (the raw profile is kept): %s", exc)
        return
    result.extra_metrics.update(metrics)
    result.artifacts["profile"] = str(out_dir)  # logged when it exists (a CPU trace has no GPU time to tabulate)
