"""Comparisons as a terminal table (rich) and as markdown for a pull request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from diffexp.compare.core import Comparison, Row
from diffexp.compare.rules import RULES
from diffexp.reports.summary import markdown_table

RULE_TEXT = {
    "guide": "guide: regression when denoise is more than 2 % slower (other rows shown with ±2 %)",
    "sglang": "sglang compare_perf.py: stage slower than max(base×1.10, base+120 ms); E2E ±2 %",
}
assert set(RULE_TEXT) == set(RULES)
COLUMNS = ["Stage", "Baseline", "Candidate", "Δ", "Δ %", "Verdict"]


def _value(value: Optional[float], unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} {unit}" if unit == "ms" else f"{value:.3f} {unit}"


def _cells(c: Comparison, row: Row) -> dict[str, str]:
    name = f"{row.name} {row.note}".strip()
    return {
        "Stage": name + ("" if row.gating else " (info)" if row.kind == "info" else ""),
        "Baseline": "-" if row.only_in == "candidate" else _value(row.base, row.unit),
        "Candidate": "-" if row.only_in == "baseline" else _value(row.new, row.unit),
        "Δ": "-" if row.diff is None else (f"{row.diff:+.2f}" if row.unit == "ms" else f"{row.diff:+.3f}"),
        "Δ %": {"candidate": "new", "baseline": "gone"}.get(row.only_in)
        or ("-" if row.pct is None else f"{row.pct:+.1f}%"),
        "Verdict": c.row_verdict(row),
    }


def header(c: Comparison) -> list[str]:
    return [
        f"baseline:  {c.base.label} — correctness {c.base.correctness}",
        f"candidate: {c.cand.label} — correctness {c.cand.correctness}",
        f"rule:      {RULE_TEXT[c.rule]}",
    ]


def to_markdown(
    comparisons: Sequence[tuple[str, Comparison]], title: str = "Performance comparison", extra: Sequence[str] = ()
) -> str:
    lines = [f"### {title}", ""]
    for label, c in comparisons:
        if label:
            lines += [f"#### {label}", ""]
        lines += [f"- {h}" for h in header(c)]
        lines += ["", f"**{c.verdict()}**", ""]
        lines += [markdown_table(COLUMNS, [_cells(c, r) for r in c.rows])]
        lines += [f"> {n}" for n in c.notes] + ([""] if c.notes else [])
    lines += list(extra)
    return "\n".join(lines).rstrip() + "\n"


def print_terminal(comparisons: Sequence[tuple[str, Comparison]], extra: Sequence[str] = ()) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for label, c in comparisons:
        table = Table(title=label or None, caption="\n".join(header(c)), caption_justify="left")
        for column in COLUMNS:
            table.add_column(column, justify="left" if column in ("Stage", "Verdict") else "right")
        for row in c.rows:
            cells = _cells(c, row)
            table.add_row(*[cells[col] for col in COLUMNS])
        console.print(table)
        style = "bold red" if c.failed else "bold green" if c.improved and c.cand.correctness == "pass" else "bold"
        console.print(c.verdict(), style=style)
        for note in c.notes:
            console.print(note, style="yellow")
    for line in extra:
        console.print(line)
