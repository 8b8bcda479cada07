"""Nsight Systems: export a report (made by the engines' `nsys profile` wrapper, `engines/nsys.py`) to SQLite
and break its GPU time down with the same category map as torch.profiler traces.

As in SGLang's gputrc2graph.py, a category's time is the sum of its kernels' durations, and
CPU (non-GPU) time is the elapsed time of an *unprofiled* run of the same command minus the total
GPU time (profiling inflates wall time, so the profiled run's own elapsed time would overstate it).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Optional

import pandas as pd

from diffexp.errors import DiffexpError
from diffexp.profile.categories import CategoryMap, load_categories

log = logging.getLogger(__name__)

CPU_CATEGORY = "CPU(non-GPU)"
# Nsight's SQLite export: activity tables, and StringIds for the names they reference.
_ACTIVITY_QUERIES = {
    "kernel": "SELECT k.start, k.end, k.deviceId, s.value FROM CUPTI_ACTIVITY_KIND_KERNEL k "
    "JOIN StringIds s ON s.id = k.{name_column}",
    "gpu_memcpy": "SELECT start, end, deviceId, 'Memcpy' FROM CUPTI_ACTIVITY_KIND_MEMCPY",
    "gpu_memset": "SELECT start, end, deviceId, 'Memset' FROM CUPTI_ACTIVITY_KIND_MEMSET",
}


def export_sqlite(report: Path) -> Path:
    """`nsys export --type sqlite` of a .nsys-rep (a no-op when the .sqlite is already there)."""
    target = report.with_suffix(".sqlite")
    if target.is_file():
        return target
    if shutil.which("nsys") is None:
        raise DiffexpError(f"{report}: exporting an nsys report needs `nsys` on PATH")
    subprocess.run(["nsys", "export", "--type", "sqlite", "-o", str(target), "-f", "true", str(report)], check=True)
    return target


def read_activities(sqlite_path: Path) -> pd.DataFrame:
    """One row per GPU activity: name, trace_category (kernel / gpu_memcpy / gpu_memset), start_ns, end_ns, device."""
    if not Path(sqlite_path).is_file():
        raise DiffexpError(f"{sqlite_path}: no such nsys SQLite export")
    frames = []
    with sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for trace_category, query in _ACTIVITY_QUERIES.items():
            table = query.split(" FROM ")[1].split()[0]
            if table not in tables:
                continue
            if trace_category == "kernel":
                columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                # Demangled names carry the template arguments the category regexes look for.
                query = query.format(name_column="demangledName" if "demangledName" in columns else "shortName")
            rows = db.execute(query).fetchall()
            frame = pd.DataFrame(rows, columns=["start_ns", "end_ns", "device", "name"])
            frame["trace_category"] = trace_category
            frames.append(frame)
    if not frames or all(f.empty for f in frames):
        raise DiffexpError(f"{sqlite_path}: no CUDA kernels, memcpys or memsets (was nsys run with -t cuda?)")
    return pd.concat(frames, ignore_index=True)


def category_breakdown(
    activities: pd.DataFrame, categories: CategoryMap | None = None, elapsed_nonprofiled_s: Optional[float] = None
) -> pd.DataFrame:
    """Seconds per category (sorted, largest first) plus CPU(non-GPU) = elapsed − total GPU time."""
    categories = categories or load_categories()
    data = activities.assign(
        category=[categories.classify(n, c) for n, c in zip(activities["name"], activities["trace_category"])],
        elapsed_s=(activities["end_ns"] - activities["start_ns"]) / 1e9,
    )
    table = data.groupby("category", as_index=False)["elapsed_s"].sum()
    gpu_s = float(table["elapsed_s"].sum())
    elapsed = elapsed_nonprofiled_s or (activities["end_ns"].max() - activities["start_ns"].min()) / 1e9
    cpu = pd.DataFrame([{"category": CPU_CATEGORY, "elapsed_s": max(0.0, float(elapsed) - gpu_s)}])
    table = pd.concat([table, cpu], ignore_index=True).sort_values("elapsed_s", ascending=False, ignore_index=True)
    table["share_pct"] = 100.0 * table["elapsed_s"] / table["elapsed_s"].sum()
    return table


def write_breakdown(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """nsys_categories.{csv,md}, and the chart (.html) where plotly is importable (a GPU box may lack it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, markdown, html = (
        out_dir / "nsys_categories.csv",
        out_dir / "nsys_categories.md",
        out_dir / "nsys_categories.html",
    )
    table.to_csv(csv, index=False)
    lines = ["| category | elapsed (s) | share (%) |", "|---|---:|---:|"]
    lines += [f"| {r.category} | {r.elapsed_s:.4f} | {r.share_pct:.1f} |" for r in table.itertuples()]
    markdown.write_text("\n".join(lines) + "\n")
    try:
        import plotly.graph_objects as go
    except ImportError as exc:
        log.warning("no nsys category chart (%s): the tables are %s and %s", exc, csv, markdown)
        return [csv, markdown]
    figure = go.Figure([go.Bar(name=r.category, x=["run"], y=[r.elapsed_s]) for r in table.itertuples()])
    figure.update_layout(barmode="stack", title="GPU time by category (nsys)", yaxis_title="seconds")
    figure.write_html(html, include_plotlyjs="cdn")
    return [csv, markdown, html]
