"""The guide's result-recording table, for a sweep's points (and the standard suite), as CSV and markdown.

Built only from what MLflow holds, so the table logged when a sweep ends and the one rebuilt later
by `python -m diffexp.report sweep=…` are the same table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from diffexp import names
from diffexp.reports.pareto import pareto_front
from diffexp.reports.scaling import COLUMNS as SCALING_COLUMNS
from diffexp.reports.scaling import rounded_cells, scaling_cells
from diffexp.tracking.records import RecordedRun, parse_point_overrides

# Memory in GiB (2**30 bytes) everywhere in diffexp, the unit in the header: the guide's "GB" column is GiB here.
PEAK_MEM_COLUMN = "Peak Mem (GiB)"
# The guide's "Result Recording Format" columns, in its order.
GUIDE_COLUMNS = [
    "Model",
    "Task",
    "Steps",
    "Resolution",
    "Denoise (s) ★",
    "Step (ms)",
    "E2E (s)",
    PEAK_MEM_COLUMN,
    "SGLang Ver",
    "GPU",
]
FASTEST = "★ fastest"
MISSING = "-"


def _num(value: Optional[float]) -> str:
    # Full precision in the CSV: the table must give back exactly what the runs logged.
    return MISSING if value is None else repr(float(value))


def resolution(params: dict[str, str]) -> str:
    """ "1024×1024", "720P 81fr", "32×32 9fr" — the guide's spelling."""
    get = lambda k: params.get(f"model.sampling.{k}", "None")  # noqa: E731
    width, height, preset, frames = get("width"), get("height"), get("resolution"), get("num_frames")
    if width != "None" and height != "None":
        text = f"{width}×{height}"
    elif preset != "None":
        text = preset.upper()
    else:
        text = MISSING
    if frames != "None" and params.get("model.task") in ("t2v", "ti2v", "i2v"):
        text += f" {frames}fr"
    return text


def gpu_label(run: RecordedRun) -> str:
    names = run.tags.get("gpu.names", "none")
    if names in ("none", ""):
        return "CPU"
    count = run.params.get("parallel.num_gpus", "1")
    first = names.split("; ")[0]
    return first if count == "1" else f"{count}× {first}"


def steps_as_run(run: RecordedRun) -> str:
    """The denoise steps one measured generation ran (its per-step series), with the asked count beside it where
    they differ; the asked count where no series was recorded. A recipe that leaves the count to the pipeline's
    default (FLUX.2-dev) asks for none."""
    asked = run.params.get("model.sampling.num_inference_steps", "None")
    ran = len(run.result.denoise_step_ms) or int(run.metrics.get("denoise_steps", 0))
    if not ran:
        return asked if asked != "None" else MISSING
    if asked in ("None", str(ran)):
        return str(ran)
    return f"{ran} (asked {asked})"


def guide_row(run: RecordedRun) -> dict[str, str]:
    """One run as a row of the guide's table (numbers unrounded; markdown rounds them)."""
    p, r = run.params, run.result
    label = p.get("model.label") or p.get("model.name", MISSING)
    if label == "None":
        label = p.get("model.name", MISSING)
    if run.tags.get("weights.random") == "true" and p.get("model.weights") == "random":
        label += " (random weights)"
    engine = run.tags.get("engine", p.get("engine.name", ""))
    version = (
        run.tags.get("version.sglang", MISSING)
        if engine == "sglang"
        else f"n/a (diffusers {run.tags.get('version.diffusers', '?')})"
    )
    task = p.get("model.task_label", "None")
    return {
        "Model": label,
        "Task": task if task != "None" else p.get("model.task", MISSING),
        "Steps": steps_as_run(run),
        "Resolution": resolution(p),
        "Denoise (s) ★": _num(r.denoise_s),
        "Step (ms)": _num(run.metrics.get("denoise_step_ms", r.denoise_step_median_ms)),  # the logged headline
        "E2E (s)": _num(r.e2e_s),
        PEAK_MEM_COLUMN: _num(r.peak_mem_gib),
        "SGLang Ver": version,
        "GPU": gpu_label(run),
    }


@dataclass
class SweepSummary:
    """One row per point: swept overrides, the guide's columns, correctness, status, marks."""

    columns: list[str]
    rows: list[dict[str, str]]
    passed: int
    failed: int
    fastest: Optional[RecordedRun]
    pareto: list[RecordedRun]
    # Warnings under the table: points whose engine did not run what was asked, or chose the placement itself.
    notes: list[str] = field(default_factory=list)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return out.getvalue()

    def to_markdown(self) -> str:
        table = markdown_table(self.columns, [rounded(row) for row in self.rows])
        return table + "".join(f"\n> {note}\n" for note in self.notes)

    def write(self, directory: Path) -> dict[str, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"csv": directory / "summary.csv", "md": directory / "summary.md"}
        paths["csv"].write_text(self.to_csv())
        paths["md"].write_text(self.to_markdown())
        return paths


def rounded(row: dict[str, str]) -> dict[str, str]:
    """A table row as displayed: times to 3 decimals (a step's ms to 1), memory to 2, the fastest point's denoise
    in bold."""
    out = rounded_cells(row)
    for column, digits in (("Denoise (s) ★", 3), ("Step (ms)", 1), ("E2E (s)", 3), (PEAK_MEM_COLUMN, 2)):
        if out.get(column, MISSING) != MISSING:
            out[column] = f"{float(out[column]):.{digits}f}"
    if out.get("Fastest") == FASTEST and out.get("Denoise (s) ★", MISSING) != MISSING:
        out["Denoise (s) ★"] = f"**{out['Denoise (s) ★']}**"
    return out


def markdown_table(columns: Sequence[str], rows: Sequence[dict[str, str]]) -> str:
    def cell(value: str) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _key_label(key: str) -> str:
    return key.lstrip("+~")


def _beyond_noise(fastest: RecordedRun, runner_up: RecordedRun) -> bool:
    """Whether the fastest point beats the runner-up beyond the noise: their denoise intervals do not overlap.
    Single-shot points (no interval: noise unknown) keep the plain lowest-denoise star."""
    high, low = fastest.metrics.get("denoise_s.ci95_high"), runner_up.metrics.get("denoise_s.ci95_low")
    return high is None or low is None or high < low


def summarize(
    points: Sequence[RecordedRun], swept_keys: Sequence[str], samples: Optional[Mapping[str, Sequence[float]]] = None
) -> SweepSummary:
    """The sweep's table; the fastest point is the lowest denoise among finished, not-incorrect points. With
    points on different GPU counts and a baseline, each point's speed-up and scaling efficiency against it, from
    `samples` (run id -> its denoise_s sample; default: the one figure each)."""
    finished = [p for p in points if p.status == "FINISHED" and p.result.denoise_s is not None]
    # Faster but incorrect output is not an improvement: a failed review never wins.
    eligible = [p for p in finished if p.correctness != "fail"]
    ranked = sorted(eligible, key=lambda p: p.result.denoise_s)
    fastest = ranked[0] if ranked and (len(ranked) < 2 or _beyond_noise(ranked[0], ranked[1])) else None
    measured = [p for p in finished if p.result.peak_mem_gib is not None]
    front_idx = pareto_front([(p.result.denoise_s, p.result.peak_mem_gib) for p in measured])
    pareto = [measured[i] for i in front_idx]

    key_columns = [_key_label(k) for k in swept_keys]
    scaled, scaling_notes = scaling_cells(points, samples or {})
    columns = [
        "Point",
        *key_columns,
        *GUIDE_COLUMNS,
        *(SCALING_COLUMNS if scaled else []),
        "Correctness",
        "Status",
        "Fastest",
        "Pareto",
        "Baseline",
        "Run ID",
    ]
    rows = []
    for run in points:
        chosen = parse_point_overrides(run.tags.get(names.SWEEP_OVERRIDES))
        row = {"Point": str(run.point) if run.point is not None else MISSING}
        row.update({_key_label(k): chosen.get(k, MISSING) for k in swept_keys})
        row.update(guide_row(run))
        row.update(scaled.get(run.run_id, {}))
        row.update(
            {
                "Correctness": run.correctness,
                "Status": run.status,
                "Fastest": FASTEST if fastest is not None and run.run_id == fastest.run_id else "",
                "Pareto": "yes" if run in pareto else "",
                "Baseline": "yes" if run.tags.get(names.SWEEP_BASELINE) == "true" else "",
                "Run ID": run.run_id,
            }
        )
        rows.append(row)
    passed = sum(1 for p in points if p.status == "FINISHED")
    notes = [f"point {r.point if r.point is not None else r.name}: {n}" for r in points for n in what_ran_notes(r)]
    notes += scaling_notes
    return SweepSummary(columns, rows, passed, len(points) - passed, fastest, pareto, notes)


def what_ran_notes(run: RecordedRun) -> list[str]:
    """What the engine really ran, where it is not what the run asked for (SGLang rewrites its arguments; a pipeline
    rounds a size off its grid)."""
    notes = []
    if names.RESOLVED_MISMATCH in run.tags:
        notes.append(f"⚠ DID NOT RUN WHAT WAS ASKED: {run.tags[names.RESOLVED_MISMATCH]}")
    if names.OUTPUT_SHAPE_MISMATCH in run.tags:
        notes.append(f"⚠ OUTPUT SHAPE NOT AS ASKED: {run.tags[names.OUTPUT_SHAPE_MISMATCH]}")
    if names.INCOMPLETE in run.tags:
        notes.append(f"⚠ INCOMPLETE (its figures kept, what followed them not done): {run.tags[names.INCOMPLETE]}")
    if names.RESOLVED_AUTO_TUNED in run.tags:
        notes.append(f"auto-tuned baseline (the engine chose the placement: {run.tags[names.RESOLVED_AUTO_TUNED]})")
    return notes


def point_label(run: RecordedRun) -> str:
    """Short name of a point for charts: its swept overrides, else its run name."""
    chosen = parse_point_overrides(run.tags.get(names.SWEEP_OVERRIDES))
    text = " ".join(f"{_key_label(k)}={v}" for k, v in chosen.items())
    prefix = f"#{run.point} " if run.point is not None else ""
    return prefix + (text or run.name)
