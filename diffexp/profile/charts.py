"""Plotly figures of an analysis or a comparison: categories, top kernels, per-step timeline."""

from __future__ import annotations

import plotly.graph_objects as go

from diffexp.profile.analysis import TraceAnalysis
from diffexp.profile.compare import TraceComparison
from diffexp.profile.display import unique_labels

_PALETTE = [
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#E45756",
    "#72B7B2",
    "#EECA3B",
    "#B279A2",
    "#FF9DA6",
    "#9D755D",
    "#BAB0AC",
    "#1F77B4",
    "#2CA02C",
]


def category_colors(category_names: tuple[str, ...]) -> dict[str, str]:
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(category_names)}


def category_bar(traces: list[tuple[str, TraceAnalysis]]) -> go.Figure:
    """GPU time by category, stacked: one bar per trace."""
    names = tuple(dict.fromkeys(n for _, a in traces for n in (*a.category_names, *a.categories["category"])))
    colors = category_colors(names)
    figure = go.Figure()
    labels = [label for label, _ in traces]
    for category in names:
        values = [_category_ms(analysis, category) for _, analysis in traces]
        if any(values):
            figure.add_bar(name=category, x=labels, y=values, marker_color=colors[category])
    figure.update_layout(barmode="stack", title="GPU time by category", yaxis_title="GPU time (ms)")
    return figure


def _category_ms(analysis: TraceAnalysis, category: str) -> float:
    match = analysis.categories.loc[analysis.categories["category"] == category, "gpu_ms"]
    return float(match.iloc[0]) if len(match) else 0.0


def top_kernel_bar(analysis: TraceAnalysis, top: int) -> go.Figure:
    """The `top` kernels by total GPU time, coloured by category."""
    rows = analysis.kernels.head(top).iloc[::-1]
    labels = unique_labels(rows["name"].tolist(), width=70)
    colors = category_colors(analysis.category_names)
    figure = go.Figure(
        go.Bar(
            x=rows["total_ms"],
            y=labels,
            orientation="h",
            marker_color=[colors.get(c, "#888888") for c in rows["category"]],
            customdata=rows[["category", "count", "mean_us"]].to_numpy(),
            hovertemplate="%{y}<br>%{x:.3f} ms, %{customdata[1]} calls, %{customdata[2]:.1f} µs mean"
            "<br>%{customdata[0]}<extra></extra>",
        )
    )
    figure.update_layout(
        title=f"Top {len(rows)} kernels by GPU time", xaxis_title="GPU time (ms)", height=200 + 24 * len(rows)
    )
    return figure


def kernel_delta_bar(comparison: TraceComparison, top: int) -> go.Figure:
    """The `top` kernels (largest of before and after), before and after side by side."""
    rows = comparison.kernels.head(top).iloc[::-1]
    labels = unique_labels(rows["name"].tolist(), width=70)
    figure = go.Figure()
    figure.add_bar(name="before", x=rows["before_ms"], y=labels, orientation="h", marker_color="#BAB0AC")
    figure.add_bar(name="after", x=rows["after_ms"], y=labels, orientation="h", marker_color="#4C78A8")
    figure.update_layout(
        barmode="group",
        title=f"Top {len(rows)} kernels: before vs after",
        xaxis_title="GPU time (ms)",
        height=200 + 40 * len(rows),
    )
    return figure


def step_timeline(traces: list[tuple[str, TraceAnalysis]]) -> go.Figure:
    """Per denoise step: host span (record_function) and GPU span of the work it launched, on one time axis."""
    figure = go.Figure()
    for label, analysis in traces:
        steps = analysis.steps
        prefix = f"{label} · " if len(traces) > 1 else ""
        rows = [f"{prefix}step {s}" for s in steps["step"]]
        figure.add_bar(
            name=f"{prefix}host (record_function)",
            y=rows,
            x=steps["cpu_ms"],
            base=steps["cpu_start_ms"],
            orientation="h",
            marker_color="#BAB0AC",
            hovertemplate="%{y}: host %{base:.2f} → +%{x:.2f} ms<extra></extra>",
        )
        figure.add_bar(
            name=f"{prefix}GPU (kernels it launched)",
            y=rows,
            x=steps["gpu_span_ms"],
            base=steps["gpu_start_ms"],
            orientation="h",
            marker_color="#4C78A8",
            customdata=steps["gpu_ms"],
            hovertemplate="%{y}: GPU %{base:.2f} → +%{x:.2f} ms span, %{customdata:.2f} ms busy<extra></extra>",
        )
    figure.update_layout(
        barmode="group",
        title="Per-step timeline (ms from the first event)",
        xaxis_title="time (ms)",
        yaxis={"autorange": "reversed"},
        height=250 + 30 * sum(len(a.steps) for _, a in traces),
    )
    return figure


def step_category_bar(traces: list[tuple[str, TraceAnalysis]]) -> go.Figure:
    """GPU time of each step split by category (stacked)."""
    names = tuple(dict.fromkeys(n for _, a in traces for n in a.category_names))
    colors = category_colors(names)
    figure = go.Figure()
    for category in names:
        x, y = [], []
        for label, analysis in traces:
            rows = analysis.step_categories[analysis.step_categories["category"] == category]
            prefix = f"{label} · " if len(traces) > 1 else ""
            x += [f"{prefix}step {s}" for s in rows["step"]]
            y += rows["gpu_ms"].tolist()
        if x:
            figure.add_bar(name=category, x=x, y=y, marker_color=colors[category])
    figure.update_layout(barmode="stack", title="GPU time per step by category", yaxis_title="GPU time (ms)")
    return figure
