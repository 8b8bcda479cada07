"""A baseline and a candidate (MLflow runs or perf dumps) as per-stage rows with a verdict each.

Correctness gates performance (the guide): a candidate whose `correctness` review did not pass is
never called an improvement, and one whose review failed fails the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from diffexp import names
from diffexp.compare.perf_dump import PerfDump, is_denoise_stage
from diffexp.compare.rules import (
    IMPROVEMENT,
    NEUTRAL,
    REGRESSION,
    SGLANG_E2E_EMOJI,
    SGLANG_STAGE_EMOJI,
    classify,
    delta,
    gates,
)
from diffexp.review.verdict import FAIL, PASS, UNCHECKED
from diffexp.tracking.records import RecordedRun

DENOISE, E2E = "Denoise ★", "E2E Latency"
# Stages that are not inference latency (model load, compile warmup): shown, never gating.
_NOT_LATENCY = ("load", "warmup", "compile")


@dataclass
class Figure:
    value: float
    kind: str  # denoise | stage | e2e | info
    unit: str = "ms"
    count: int = 1  # steps summed into a "Denoising Loop" row


@dataclass
class Side:
    label: str
    figures: dict[str, Figure]  # in display order
    correctness: str = UNCHECKED
    correctness_note: str = ""
    run: Optional[RecordedRun] = None


@dataclass
class Row:
    name: str
    kind: str
    unit: str
    base: Optional[float]
    new: Optional[float]
    diff: Optional[float]
    pct: Optional[float]
    speed: Optional[str]  # regression | improvement | neutral; None when a side lacks the figure
    gating: bool
    note: str = ""  # e.g. "(50 steps)" for a Denoising Loop row
    only_in: Optional[str] = None  # "candidate" (a new stage) or "baseline" (a stage gone); None: both have it


@dataclass
class Comparison:
    rule: str
    base: Side
    cand: Side
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> list[Row]:
        return [r for r in self.rows if r.gating and r.speed == REGRESSION]

    @property
    def improved(self) -> list[Row]:
        return [r for r in self.rows if r.gating and r.speed == IMPROVEMENT]

    @property
    def failed(self) -> bool:
        """Exit non-zero: a gating row regressed, or the candidate's output failed the correctness review."""
        return bool(self.regressed) or self.cand.correctness == FAIL

    def verdict(self) -> str:
        c = self.cand.correctness
        if self.cand.correctness == FAIL:
            return "FAIL: the candidate's output failed the correctness review — faster or not, it is not acceptable"
        if self.regressed:
            return "REGRESSION: " + ", ".join(f"{r.name} {r.pct:+.1f}%" for r in self.regressed)
        if self.improved:
            if c == PASS:
                return "IMPROVEMENT: " + ", ".join(f"{r.name} {r.pct:+.1f}%" for r in self.improved)
            return (
                "FASTER, NOT AN IMPROVEMENT: correctness is "
                f"{c}{' (' + self.cand.correctness_note + ')' if self.cand.correctness_note else ''}; "
                "review the candidate's output before calling it an improvement"
            )
        return "NO REGRESSION: within the rule's thresholds"

    def row_verdict(self, row: Row) -> str:
        speed = self._speed_verdict(row)
        if row.only_in is None:
            return speed
        what = "new stage (only in the candidate)" if row.only_in == "candidate" else "gone (only in the baseline)"
        # The sglang rule judges it as compare_perf.py does, reading the missing side as 0 ms.
        return what if row.speed is None else f"{what}; compare_perf reads the other side as 0 ms: {speed}"

    def _speed_verdict(self, row: Row) -> str:
        if row.speed is None:
            return "only in " + ("candidate" if row.base is None else "baseline")
        if self.rule == "sglang" and row.kind != "info":
            mark = (SGLANG_E2E_EMOJI if row.kind == "e2e" else SGLANG_STAGE_EMOJI)[row.speed] + " "
        else:
            mark = {REGRESSION: "🔴 " if row.gating else "🟠 ", IMPROVEMENT: "🟢 ", NEUTRAL: "⚪ "}[row.speed]
        if row.speed == REGRESSION:
            return mark + ("regression" if row.gating else "slower")
        if row.speed == IMPROVEMENT:
            if not row.gating:
                return mark + ("lower" if row.unit == "GiB" else "faster")
            if self.cand.correctness == PASS:
                return mark + "improvement"
            return mark + f"faster, not an improvement (correctness {self.cand.correctness})"
        return mark + "within threshold"


def side_from_dump(dump: PerfDump, rule: str) -> Side:
    figures: dict[str, Figure] = {}
    if rule == "guide" and dump.denoise_ms is not None:
        figures[DENOISE] = Figure(dump.denoise_ms, "denoise")
    figures[E2E] = Figure(dump.total_duration_ms, "e2e")
    for name, ms in dump.stages_ms.items():
        figures[name] = Figure(ms, "stage", count=dump.counts.get(name, 1))
    if rule == "guide" and dump.peak_reserved_mb is not None:
        figures["Peak reserved memory"] = Figure(dump.peak_reserved_mb / 1024, "info", "GiB")
    return Side(str(dump.path), figures, UNCHECKED, "a perf dump carries no correctness review")


def side_from_run(run: RecordedRun, label: Optional[str] = None) -> Side:
    from diffexp.review.verdict import verdict_of, verdict_reason

    r = run.result
    figures: dict[str, Figure] = {}

    def add(name: str, seconds: Optional[float], kind: str) -> None:
        if seconds is not None:
            figures[name] = Figure(seconds * 1000, kind)

    add(DENOISE, r.denoise_s, "denoise")
    add(E2E, r.e2e_s, "e2e")
    add("text_encode", r.text_encode_s, "stage")
    add("vae_decode", r.vae_decode_s, "stage")
    for stage, seconds in r.stages_s.items():
        if stage not in ("text_encode", "vae_decode", "e2e"):
            add(stage, seconds, "info" if any(w in stage.lower() for w in _NOT_LATENCY) else "stage")
    if r.denoise_step_median_ms is not None:
        figures["Denoise step (median)"] = Figure(r.denoise_step_median_ms, "info")
    if r.peak_mem_gib is not None:
        figures["Peak memory"] = Figure(r.peak_mem_gib, "info", "GiB")
    return Side(label or f"{run.name} ({run.run_id[:8]})", figures, verdict_of(run.tags), verdict_reason(run.tags), run)


def compare(base: Side, cand: Side, rule: str) -> Comparison:
    # compare_perf's order: the candidate's rows, then rows only the baseline has.
    stage_names = list(cand.figures) + [n for n in base.figures if n not in cand.figures]
    rows = []
    for name in stage_names:
        b, n = base.figures.get(name), cand.figures.get(name)
        only_in = None if (b is None) == (n is None) else ("candidate" if b is None else "baseline")
        known = b or n
        kind = known.kind
        if rule == "sglang" and (b is None or n is None) and kind != "info":
            # compare_perf.py reads a stage one side lacks as 0.0 ms.
            b, n = b or Figure(0.0, kind), n or Figure(0.0, kind)
        note = ""
        if is_denoise_stage(name) and b is not None and n is not None and (b.count > 1 or n.count > 1):
            note = f"({n.count} steps)" if n.count == b.count else f"({b.count}->{n.count} steps)"
        if b is None or n is None:
            rows.append(
                Row(name, kind, known.unit, b and b.value, n and n.value, None, None, None, False, note, only_in)
            )
            continue
        diff, pct = delta(b.value, n.value)
        rows.append(
            Row(
                name,
                kind,
                known.unit,
                b.value,
                n.value,
                diff,
                pct,
                classify(rule, kind, b.value, n.value),
                gates(rule, kind),
                note,
                only_in,
            )
        )
    notes = []
    for role, side in (("Baseline", base), ("Candidate", cand)):
        tags = side.run.tags if side.run is not None else {}
        if names.RESOLVED_MISMATCH in tags:
            notes.append(f"{role}: SGLANG DID NOT RUN WHAT WAS ASKED: {tags[names.RESOLVED_MISMATCH]}")
        if names.RESOLVED_AUTO_TUNED in tags:
            notes.append(
                f"{role}: an auto-tuned baseline ({tags[names.RESOLVED_AUTO_TUNED]}): SGLang chose its placement"
            )
    if cand.correctness != PASS:
        notes.append(
            f"Candidate correctness: {cand.correctness}"
            + (f" ({cand.correctness_note})" if cand.correctness_note else "")
            + ". Faster rows are not called improvements until the correctness review passes."
        )
    return Comparison(rule, base, cand, rows, notes)
