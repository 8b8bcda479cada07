"""Rich tables of an analysis or a comparison for the terminal."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from diffexp.profile.analysis import TraceAnalysis
from diffexp.profile.compare import TraceComparison
from diffexp.profile.display import format_cell, with_short_names


def rich_table(frame: pd.DataFrame, title: str, digits: int = 3) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left", overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(format_cell(value, digits) for value in row))
    return table


def print_analysis(analysis: TraceAnalysis, top: int, console: Console) -> None:
    console.print(
        f"[bold]{Path(analysis.source).name}[/]: GPU time {analysis.gpu_ms:,.3f} ms, busy {analysis.busy_ms:,.3f} ms "
        f"of {analysis.window_ms:,.3f} ms ({analysis.busy_pct:.1f}%), idle {analysis.idle_ms:,.3f} ms; "
        f"{analysis.read.raw_bytes / 1e6:,.1f} MB read in {analysis.read_s:.2f} s ({analysis.read.parser} parser)"
    )
    console.print(rich_table(analysis.categories, f"GPU time by category ({analysis.category_map})"))
    kernels = with_short_names(analysis.kernels.head(top), width=70)
    console.print(rich_table(kernels.drop(columns=["kind"]), f"Top {len(kernels)} kernels"))
    console.print(rich_table(analysis.scope_groups.head(top), "GPU time per record_function scope (numbers folded)"))
    if len(analysis.steps):
        columns = ["step", "scope", "cpu_ms", "gpu_ms", "kernels", "gpu_span_ms"]
        console.print(rich_table(analysis.steps[columns], f"Per step ({analysis.step_pattern})"))
    console.print(rich_table(analysis.devices, "Devices"))


def print_comparison(comparison: TraceComparison, top: int, console: Console) -> None:
    console.print(f"[bold]before[/] {comparison.before.source}\n[bold]after[/]  {comparison.after.source}")
    console.print(rich_table(comparison.totals, "Totals"))
    console.print(rich_table(comparison.categories, "By category"))
    kernels = with_short_names(comparison.kernels.head(top), width=70)
    console.print(rich_table(kernels.drop(columns=["before_count", "after_count"]), f"Top {len(kernels)} kernels"))
