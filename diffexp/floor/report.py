"""The floor as tables: a summary, one row per category (with the run's own time per category when it was
profiled), the largest shapes; printed with rich, written as floor.md and floor.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.table import Table

from diffexp.floor.floor import Floor
from diffexp.floor.shapes import ATTENTION, CATEGORIES, GEMM, MEMORY

FLOOR_JSON, FLOOR_MD = "floor.json", "floor.md"
DEFAULT_TOP = 12
# The profile's categories (conf/profile_categories/guide.yaml) folded into the floor's three; collective
# communication is not part of a one-device floor.
PROFILE_TO_FLOOR = {"gemm": GEMM, "attn": ATTENTION, "nccl_comm": None}


def si(value: float, unit: str) -> str:
    """3 significant digits with an SI prefix: 59.5 TFLOP, 42.9 GB, 1.23 MFLOP."""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def run_category_ms(metrics: dict[str, float]) -> Optional[dict[str, float]]:
    """GPU ms per floor category and denoise step from a profiled run's `profile.cat.*_ms` metrics."""
    steps = metrics.get("profile.steps")
    if not steps:
        return None
    out = dict.fromkeys(CATEGORIES, 0.0)
    for key, value in metrics.items():
        if key.startswith("profile.cat.") and key.endswith("_ms"):
            category = PROFILE_TO_FLOOR.get(key[len("profile.cat.") : -len("_ms")], MEMORY)
            if category is not None:
                out[category] += value / steps
    return out


def category_rows(floor: Floor, run_ms: Optional[dict[str, float]] = None) -> list[dict]:
    """One row per category: work, floor ms and its share, the rate it assumes; the run's ms and the gap."""
    rows = []
    for category in CATEGORIES:
        work, ms = floor.work(category), floor.category_ms(category)
        memory = category == MEMORY
        row = {
            "category": category,
            "work": si(work, "B" if memory else "FLOP"),
            "floor_ms": ms,
            "share_pct": 100 * ms / floor.floor_ms if ms is not None and floor.floor_ms else None,
            "rate": None if not ms else si(work / (ms * 1e-3), "B/s" if memory else "FLOP/s"),
            "run_ms": None,
            "gap_ms": None,
        }
        if run_ms is not None:
            row["run_ms"] = run_ms.get(category)
            if ms is not None and row["run_ms"] is not None:
                row["gap_ms"] = row["run_ms"] - ms
        rows.append(row)
    key = "gap_ms" if run_ms is not None else "floor_ms"
    return sorted(rows, key=lambda r: -(r[key] or 0.0))


def summary_line(floor: Floor, run_ms: Optional[dict[str, float]] = None) -> str:
    """One line for a run's console: the floor and its categories, the efficiency, the largest gap if profiled."""
    if floor.timings is None:
        return f"compute floor not measured (counts only): {si(floor.counts.flops(GEMM), 'FLOP')} of GEMM"
    rows = category_rows(floor, run_ms)
    parts = ", ".join(f"{r['category']} {r['floor_ms']:.3g}" for r in rows)
    line = f"compute floor {floor.floor_ms:.3g} ms ({parts}) on {floor.timings.device}"
    if floor.efficiency is not None:
        line += f"; efficiency {100 * floor.efficiency:.1f} % of the {floor.step_ms:.3g} ms step"
    if floor.sustained is not None:
        line += f"; sustained floor {floor.sustained.ms:.3g} ms"
        if floor.sustained_efficiency is not None:
            line += f" (efficiency {100 * floor.sustained_efficiency:.1f} %)"
    gaps = [r for r in rows if r["gap_ms"] is not None]
    if gaps:
        line += f"; largest gap: {gaps[0]['category']} {gaps[0]['gap_ms']:+.3g} ms"
    return line


def summary_rows(floor: Floor) -> list[tuple[str, str]]:
    rows = []
    if floor.timings is not None:
        rows.append(("device", floor.timings.device))
        rows.append(("floor", f"{floor.floor_ms:.2f} ms"))
    else:
        rows.append(("floor", "not measured (counts only)"))
    if floor.step_ms:
        rows.append(("measured step", f"{floor.step_ms:.2f} ms"))
    if floor.efficiency is not None:
        rows.append(("efficiency (floor ÷ step)", f"{100 * floor.efficiency:.1f} %"))
    if floor.sustained is not None:
        s = floor.sustained
        rows.append(("sustained floor (the work as one step, under load)", f"{s.ms:.2f} ms"))
        if floor.sustained_efficiency is not None:
            rows.append(("efficiency against the sustained floor", f"{100 * floor.sustained_efficiency:.1f} %"))
        if s.gpu:
            clocks = f"{s.gpu['sm_mhz_mean']:.0f} MHz / {s.gpu['power_w_mean']:.0f} W"
            rows.append(("SM clock / power (mean), sustained", f"{clocks}, after {s.heat_s:.1f} s of load"))
    c = floor.counts
    rows.append(("transformer calls per step", str(c.forwards)))
    rows.append(("memory-bound bytes, fused / eager", f"{si(c.memory_bytes, 'B')} / {si(c.memory_bytes_eager, 'B')}"))
    if floor.timings is not None:
        rows.append(("copy bandwidth", f"{floor.timings.copy_gbps:.0f} GB/s"))
        rows.append(("attention timed as", floor.timings.attention_backend))
        gpu = floor.timings.gpu
        if gpu:
            rows.append(
                (
                    "SM clock / power (mean), shapes timed alone",
                    f"{gpu['sm_mhz_mean']:.0f} MHz / {gpu['power_w_mean']:.0f} W",
                )
            )
        host = floor.timings.host
        if host:
            load = f"{host['load_avg_1m_before']:.2f} / {host['load_avg_1m_after']:.2f}"
            rows.append(("host load average (1 min), before / after", load))
    if c.uncounted_ops:
        rows.append(("attention-like ops NOT counted", ", ".join(sorted(c.uncounted_ops))))
    return rows


def _fmt(value: Optional[float], spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _category_cells(row: dict) -> list[str]:
    return [
        row["category"],
        row["work"],
        _fmt(row["floor_ms"]),
        _fmt(row["share_pct"], ".1f", " %"),
        row["rate"] or "-",
        _fmt(row["run_ms"]),
        _fmt(row["gap_ms"]),
    ]


CATEGORY_HEADERS = ["category", "work", "floor ms", "share", "rate", "run ms", "gap ms"]
SHAPE_HEADERS = ["shape", "category", "calls", "work", "ms each", "total ms", "TFLOP/s"]


def _shape_cells(floor: Floor, top: int) -> list[list[str]]:
    return [
        [
            c.shape.label,
            c.shape.category,
            str(c.count),
            si(c.count * c.shape.flops, "FLOP"),
            _fmt(c.ms_each, ".4f"),
            _fmt(c.total_ms),
            _fmt(c.tflops, ".3g"),  # 3 digits: a CPU reaches hundredths of a TFLOP/s
        ]
        for c in floor.costs()[:top]
    ]


def print_floor(
    floor: Floor, title: str, run_ms: Optional[dict[str, float]] = None, top: int = DEFAULT_TOP, console=None
) -> None:
    console = console or Console()
    summary = Table(title=title, show_header=False)
    for name, value in summary_rows(floor):
        summary.add_row(name, value)
    console.print(summary)
    categories = Table(title="by category (largest gap first)" if run_ms else "by category")
    for header in CATEGORY_HEADERS:
        categories.add_column(header, justify="left" if header == "category" else "right")
    for row in category_rows(floor, run_ms):
        categories.add_row(*_category_cells(row))
    console.print(categories)
    shapes = Table(title=f"largest shapes (top {top})")
    for header in SHAPE_HEADERS:
        shapes.add_column(header, justify="left" if header in ("shape", "category") else "right")
    for cells in _shape_cells(floor, top):
        shapes.add_row(*cells)
    console.print(shapes)


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def markdown(floor: Floor, title: str, run_ms: Optional[dict[str, float]] = None, top: int = DEFAULT_TOP) -> str:
    parts = [
        f"# {title}",
        _md_table(["", ""], [list(r) for r in summary_rows(floor)]),
        "## By category",
        _md_table(CATEGORY_HEADERS, [_category_cells(r) for r in category_rows(floor, run_ms)]),
        f"## Largest shapes (top {top})",
        _md_table(SHAPE_HEADERS, _shape_cells(floor, top)),
        "How it is computed: docs/floor.md.",
    ]
    return "\n\n".join(parts) + "\n"


def write_floor(
    floor: Floor, out: Path, title: str, context: dict, run_ms: Optional[dict[str, float]] = None
) -> list[Path]:
    """floor.json (everything, `context` = the run it describes) and floor.md into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    data = {**context, **floor.to_dict(), "run_category_ms": run_ms}
    (out / FLOOR_JSON).write_text(json.dumps(data, indent=2, default=str))
    (out / FLOOR_MD).write_text(markdown(floor, title, run_ms))
    return [out / FLOOR_JSON, out / FLOOR_MD]
