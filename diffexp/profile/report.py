"""write_report: an analysis or a comparison as CSV tables, a markdown summary and one self-contained HTML page."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from diffexp.profile.analysis import TraceAnalysis, summary_metrics
from diffexp.profile.compare import TraceComparison
from diffexp.profile.display import markdown_table, with_short_names

log = logging.getLogger(__name__)

DEFAULT_TOP = 20


def write_report(result: TraceAnalysis | TraceComparison, out_dir: Path | str, top: int = DEFAULT_TOP) -> list[Path]:
    """Write every table as CSV plus `profile.md` and `profile.html` under out_dir; returns the files written.

    A comparison writes the delta tables at the top level and each trace's own report under before/ and after/.
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(result, TraceComparison):
        written = _write_comparison(result, directory, top)
    else:
        written = _write_analysis(result, directory, top)
    log.info("wrote %d profile report files to %s", len(written), directory)
    return written


def _write_analysis(analysis: TraceAnalysis, directory: Path, top: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    frames = {
        "kernels": analysis.kernels,
        "categories": analysis.categories,
        "scopes": analysis.scopes,
        "scope_groups": analysis.scope_groups,
        "steps": analysis.steps,
        "step_categories": analysis.step_categories,
        "devices": analysis.devices,
    }
    written = _write_csvs(frames, directory)
    summary = directory / "summary.json"
    summary.write_text(json.dumps(summary_metrics(analysis), indent=2) + "\n", encoding="utf-8")
    text = analysis_markdown(analysis, top)
    markdown = directory / "profile.md"
    markdown.write_text(text, encoding="utf-8")
    traces = [(Path(analysis.source).name, analysis)]

    def figures(charts) -> list:
        drawn = [charts.category_bar(traces), charts.top_kernel_bar(analysis, top)]
        if len(analysis.steps):
            drawn += [charts.step_timeline(traces), charts.step_category_bar(traces)]
        return drawn

    page = directory / "profile.html"
    _write_html(page, f"Profile: {Path(analysis.source).name}", figures, text)
    return [*written, summary, markdown, page]


def _write_comparison(comparison: TraceComparison, directory: Path, top: int) -> list[Path]:
    frames = {
        "categories_delta": comparison.categories,
        "kernels_delta": comparison.kernels,
        "totals_delta": comparison.totals,
    }
    written = _write_csvs(frames, directory)
    text = comparison_markdown(comparison, top)
    markdown = directory / "comparison.md"
    markdown.write_text(text, encoding="utf-8")
    traces = [("before", comparison.before), ("after", comparison.after)]

    def figures(charts) -> list:
        drawn = [charts.category_bar(traces), charts.kernel_delta_bar(comparison, top)]
        if len(comparison.before.steps) or len(comparison.after.steps):
            drawn += [charts.step_timeline(traces), charts.step_category_bar(traces)]
        return drawn

    page = directory / "comparison.html"
    _write_html(page, "Profile comparison: before vs after", figures, text)
    written += [markdown, page]
    for label, analysis in traces:
        written += _write_analysis(analysis, directory / label, top)
    return written


def _write_csvs(frames: dict[str, pd.DataFrame], directory: Path) -> list[Path]:
    paths = []
    for name, frame in frames.items():
        path = directory / f"{name}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


def analysis_markdown(analysis: TraceAnalysis, top: int = DEFAULT_TOP) -> str:
    kernels = with_short_names(analysis.kernels.head(top))
    parts = [
        f"# GPU profile of `{Path(analysis.source).name}`",
        "",
        f"GPU time {analysis.gpu_ms:,.3f} ms; busy {analysis.busy_ms:,.3f} ms of a {analysis.window_ms:,.3f} ms "
        f"window ({analysis.busy_pct:.1f}% busy, {analysis.idle_ms:,.3f} ms idle). "
        f"Categories: `{analysis.category_map}`. Steps: `{analysis.step_pattern or 'none found'}`.",
        "",
        "## GPU time by category",
        markdown_table(analysis.categories),
        "",
        f"## Top {len(kernels)} kernels",
        markdown_table(kernels),
        "",
        "## GPU time per record_function scope (numbers folded: every block's part as one row)",
        markdown_table(analysis.scope_groups.head(top)),
        "",
        "## GPU time per record_function scope",
        markdown_table(analysis.scopes.head(top)),
        "",
        "## Per step",
        markdown_table(analysis.steps) if len(analysis.steps) else "No step scopes found.",
        "",
        "## Devices",
        markdown_table(analysis.devices),
        "",
    ]
    return "\n".join(parts)


def comparison_markdown(comparison: TraceComparison, top: int = DEFAULT_TOP) -> str:
    parts = [
        "# GPU profile comparison",
        "",
        f"before: `{comparison.before.source}`  ",
        f"after: `{comparison.after.source}`",
        "",
        "## Totals",
        markdown_table(comparison.totals),
        "",
        "## By category",
        markdown_table(comparison.categories),
        "",
        f"## Top {min(top, len(comparison.kernels))} kernels",
        markdown_table(with_short_names(comparison.kernels.head(top))),
        "",
    ]
    return "\n".join(parts)


def _write_html(path: Path, title: str, figures: Callable[[object], list], markdown: str) -> None:
    """The page: `figures(charts)` drawn with plotly, then the tables. Where plotly is not importable (a GPU box
    may lack it) the page holds the tables alone and says how to draw the charts: the analysis is not lost for
    them."""
    try:
        from diffexp.profile import charts
    except ImportError as exc:
        log.warning("%s has no charts (%s): rerun python -m diffexp.profile where plotly is installed", path, exc)
        blocks = [f"<p>No charts: {html.escape(str(exc))}.</p>"]
    else:
        # plotly.js is inlined once so the page works offline and inside MLflow's artifact viewer.
        blocks = [
            figure.to_html(full_html=False, include_plotlyjs=(index == 0), default_width="100%")
            for index, figure in enumerate(figures(charts))
        ]
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body style='font-family: sans-serif'><h1>{html.escape(title)}</h1>"
        + "".join(blocks)
        + f"<h2>Tables</h2><pre>{html.escape(markdown)}</pre></body></html>"
    )
    path.write_text(page, encoding="utf-8")
