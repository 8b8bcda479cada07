"""Plotly charts of a sweep: denoise per point, memory against latency with the Pareto front, per-step lines.

HTML always (plotly.js embedded, so the page opens offline and inside the MLflow UI); PNG only where
an image exporter (kaleido) is installed.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

from diffexp.reports.summary import SweepSummary, point_label
from diffexp.tracking.records import RecordedRun

log = logging.getLogger(__name__)

FASTEST_COLOR, OTHER_COLOR, FRONT_COLOR = "#d62728", "#1f77b4", "#ff7f0e"


def denoise_per_point(points: Sequence[RecordedRun], summary: SweepSummary):
    import plotly.graph_objects as go

    done = [p for p in points if p.result.denoise_s is not None]
    fastest = summary.fastest.run_id if summary.fastest else None
    fig = go.Figure(
        go.Bar(
            x=[point_label(p) for p in done],
            y=[p.result.denoise_s for p in done],
            marker_color=[FASTEST_COLOR if p.run_id == fastest else OTHER_COLOR for p in done],
            text=[f"{p.result.denoise_s:.3f} s" + (" ★" if p.run_id == fastest else "") for p in done],
            textposition="outside",
            customdata=[[p.run_id, p.correctness] for p in done],
            hovertemplate="%{x}<br>denoise %{y:.4f} s<br>run %{customdata[0]}<br>correctness %{customdata[1]}<extra></extra>",
        )
    )
    failed = [point_label(p) for p in points if p.result.denoise_s is None]
    title = "Denoise latency per point (★ fastest)" + (f" — no figure: {', '.join(failed)}" if failed else "")
    fig.update_layout(title=title, xaxis_title="point", yaxis_title="denoise (s)")
    return fig


def memory_vs_latency(points: Sequence[RecordedRun], summary: SweepSummary):
    import plotly.graph_objects as go

    done = [p for p in points if p.result.denoise_s is not None and p.result.peak_mem_gib is not None]
    fig = go.Figure(
        go.Scatter(
            x=[p.result.denoise_s for p in done],
            y=[p.result.peak_mem_gib for p in done],
            mode="markers+text",
            text=[point_label(p) for p in done],
            textposition="top center",
            marker=dict(size=10, color=OTHER_COLOR),
            name="points",
        )
    )
    front = sorted(summary.pareto, key=lambda p: p.result.denoise_s)
    fig.add_trace(
        go.Scatter(
            x=[p.result.denoise_s for p in front],
            y=[p.result.peak_mem_gib for p in front],
            mode="lines+markers",
            line=dict(color=FRONT_COLOR, shape="hv"),
            marker=dict(size=12, color=FRONT_COLOR, symbol="diamond-open"),
            name="Pareto front",
        )
    )
    fig.update_layout(
        title="Peak memory against denoise latency", xaxis_title="denoise (s)", yaxis_title="peak memory (GiB)"
    )
    return fig


def step_latency(points: Sequence[RecordedRun]):
    import plotly.graph_objects as go

    fig = go.Figure()
    for p in points:
        if p.result.denoise_step_ms:
            steps = p.result.denoise_step_ms
            fig.add_trace(go.Scatter(x=list(range(len(steps))), y=steps, mode="lines+markers", name=point_label(p)))
    fig.update_layout(title="Per-step denoise latency", xaxis_title="denoise step", yaxis_title="step latency (ms)")
    return fig


CHARTS_HTML = "sweep_charts.html"


def write_charts(
    points: Sequence[RecordedRun], summary: SweepSummary, directory: Path, title: str = "sweep"
) -> list[Path]:
    """One HTML page with the three charts (plotly.js embedded once: ~5 MB, not 5 MB a chart); PNGs if kaleido."""
    directory.mkdir(parents=True, exist_ok=True)
    figures = {
        "denoise_per_point": denoise_per_point(points, summary),
        "memory_vs_latency": memory_vs_latency(points, summary),
        "step_latency": step_latency(points),
    }
    parts = [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=name)
        for i, (name, fig) in enumerate(figures.items())
    ]
    page = directory / CHARTS_HTML
    page.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
    written = [page]
    if importlib.util.find_spec("kaleido") is not None:
        for name, fig in figures.items():
            try:
                fig.write_image(directory / f"{name}.png")
                written.append(directory / f"{name}.png")
            except Exception as exc:  # an exporter that is installed but cannot start (no browser, …)
                log.warning("PNG export of %s skipped: %s", name, exc)
    return written
