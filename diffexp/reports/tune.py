"""A tuning's trials as a table (markdown, CSV) and a latency–memory chart with the Pareto front and the budget
line; built from `TrialRow`s, whether the tuner has them live or `python -m diffexp.report tune` reads them back
(from the tuning's MLflow parent run or from its folder's tune.json)."""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional

from diffexp import names
from diffexp.errors import DiffexpError

log = logging.getLogger(__name__)

SUMMARY = "tune.json"  # in a tuning's folder: everything the tuner knows about its trials
CHART = "tune_chart.html"  # the latency-memory chart beside it

FEASIBLE_COLOR, INFEASIBLE_COLOR, PRUNED_COLOR, WINNER_COLOR, FRONT_COLOR = (
    "#1f77b4",
    "#7f7f7f",
    "#bcbd22",
    "#d62728",
    "#ff7f0e",
)


@dataclass
class TrialRow:
    number: int
    name: str  # reference | anchor:<name> | trial <n>
    kind: str  # reference | anchor | search
    state: str  # feasible | infeasible | pruned
    reason: str = ""
    denoise_s: Optional[float] = None
    ci95_low: Optional[float] = None
    ci95_high: Optional[float] = None
    n: int = 0
    # The budgeted memory: peak VRAM on a GPU, peak host RSS on CPU (both kept).
    vram_gib: Optional[float] = None
    host_gib: Optional[float] = None
    correctness: str = ""
    complexity: int = 0
    overrides: list[str] = field(default_factory=list)
    run_id: str = ""

    @property
    def memory_gib(self) -> Optional[float]:
        return self.vram_gib if self.vram_gib is not None else self.host_gib

    def to_dict(self) -> dict:
        return asdict(self)


COLUMNS = (
    "#",
    "trial",
    "state",
    "denoise_s",
    "95% CI",
    "n",
    "peak VRAM GiB",
    "peak host GiB",
    "correctness",
    "overrides",
    "reason",
)


def _fmt(v: Optional[float], digits: int = 4) -> str:
    return "" if v is None else f"{v:.{digits}g}"


def _cells(r: TrialRow, winner: Optional[int]) -> list[str]:
    ci = f"[{_fmt(r.ci95_low)}, {_fmt(r.ci95_high)}]" if r.ci95_low is not None else ""
    return [
        str(r.number) + (" ★" if r.number == winner else ""),
        r.name,
        r.state,
        _fmt(r.denoise_s),
        ci,
        str(r.n or ""),
        _fmt(r.vram_gib, 3),
        _fmt(r.host_gib, 3),
        r.correctness,
        " ".join(r.overrides),
        r.reason,
    ]


def markdown(rows: list[TrialRow], winner: Optional[int]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(r, winner)) + " |")
    return "\n".join(lines) + "\n"


def csv_text(rows: list[TrialRow], winner: Optional[int]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(_cells(r, winner))
    return out.getvalue()


def front(rows: list[TrialRow]) -> list[TrialRow]:
    """The feasible trials no other feasible trial beats on both latency and memory."""
    from diffexp.reports.pareto import pareto_front

    measured = [r for r in rows if r.state == "feasible" and r.denoise_s is not None and r.memory_gib is not None]
    return [measured[i] for i in pareto_front([(r.denoise_s, r.memory_gib) for r in measured])]


def chart(rows: list[TrialRow], winner: Optional[int], budget_gib: Optional[float], memory_label: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    colors = {"feasible": FEASIBLE_COLOR, "infeasible": INFEASIBLE_COLOR, "pruned": PRUNED_COLOR}
    for state, color in colors.items():
        shown = [r for r in rows if r.state == state and r.denoise_s is not None and r.memory_gib is not None]
        if not shown:
            continue
        fig.add_trace(
            go.Scatter(
                x=[r.denoise_s for r in shown],
                y=[r.memory_gib for r in shown],
                mode="markers+text",
                text=[r.name for r in shown],
                textposition="top center",
                marker=dict(size=10, color=[WINNER_COLOR if r.number == winner else color for r in shown]),
                error_x=dict(
                    type="data",
                    symmetric=False,
                    array=[(r.ci95_high - r.denoise_s) if r.ci95_high is not None else 0 for r in shown],
                    arrayminus=[(r.denoise_s - r.ci95_low) if r.ci95_low is not None else 0 for r in shown],
                ),
                customdata=[[r.number, " ".join(r.overrides), r.reason, r.correctness] for r in shown],
                hovertemplate="trial %{customdata[0]}<br>%{customdata[1]}<br>denoise %{x:.4f} s<br>memory %{y:.3f} GiB"
                "<br>correctness %{customdata[3]}<br>%{customdata[2]}<extra></extra>",
                name=state,
            )
        )
    pareto = sorted(front(rows), key=lambda r: r.denoise_s)
    if pareto:
        fig.add_trace(
            go.Scatter(
                x=[r.denoise_s for r in pareto],
                y=[r.memory_gib for r in pareto],
                mode="lines",
                line=dict(color=FRONT_COLOR, dash="dot", shape="hv"),
                name="Pareto front",
            )
        )
    if budget_gib is not None:
        fig.add_hline(
            y=budget_gib, line=dict(color=WINNER_COLOR, dash="dash"), annotation_text=f"budget {budget_gib:g} GiB"
        )
    fig.update_layout(
        title="Tuning: denoise latency against peak memory (★ winner, dotted: Pareto front, dashed: budget)",
        xaxis_title="denoise (s), median with 95 % interval",
        yaxis_title=f"{memory_label} (GiB)",
    )
    return fig


def write_report(
    rows: list[TrialRow], winner: Optional[int], budget_gib: Optional[float], memory_label: str, out: Path
) -> list[Path]:
    """trials.md, trials.csv and tune_chart.html in `out` (the chart only where plotly is importable: a GPU box
    may lack it, and the tuning's figures must not be lost for a chart that `python -m diffexp.report tune` redraws)."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "trials.md", out / "trials.csv"]
    files[0].write_text(markdown(rows, winner))
    files[1].write_text(csv_text(rows, winner))
    try:
        figure = chart(rows, winner, budget_gib, memory_label)
    except ImportError as exc:
        log.warning("no latency-memory chart (%s): draw it later with python -m diffexp.report tune %s", exc, out)
        return files
    files.append(out / CHART)
    figure.write_html(files[-1], include_plotlyjs=True)
    return files


def names_a_folder(ref: str) -> bool:
    """REF names a tuning's folder rather than a parent run id: it exists or is a path (a run id has no `/`). A
    folder without tune.json is then refused by read_summary, without opening a store to look for it as a run."""
    return Path(ref).exists() or "/" in ref


def read_summary(folder: Path) -> dict:
    if not (folder / SUMMARY).is_file():
        raise DiffexpError(f"{folder}: not a tuning's folder (no {SUMMARY})")
    return json.loads((folder / SUMMARY).read_text())


def rows_from_summary(data: dict) -> list[TrialRow]:
    """A tuning's trials as its tune.json records them."""
    keys = {f.name for f in fields(TrialRow)}
    return [TrialRow(**{k: v for k, v in t.items() if k in keys}) for t in data["trials"]]


def rows_from_store(client, parent_run_id: str) -> list[TrialRow]:
    """A tuning's trials read back from MLflow: each trial's last stage (tag tune.final=true), in trial order."""
    from diffexp.tracking.queries import sweep_points

    rows = []
    for run in sweep_points(client, parent_run_id):
        t, m = run.tags, run.metrics
        if t.get("tune.final") != "true":
            continue
        cpu = m.get("peak_mem_gib.cpu")
        device = [v for k, v in m.items() if k.startswith("peak_mem_gib.") and k != "peak_mem_gib.cpu"]
        host = [v for v in (cpu, m.get("tune.host_rss_gib")) if v is not None]
        rows.append(
            TrialRow(
                number=int(t.get("tune.trial", "0")),
                name=t.get("tune.name", ""),
                kind=t.get("tune.kind", ""),
                state=t.get(names.TUNE_STATE, ""),
                reason=t.get("tune.reason", ""),
                denoise_s=m.get("denoise_s"),
                ci95_low=m.get("denoise_s.ci95_low"),
                ci95_high=m.get("denoise_s.ci95_high"),
                n=int(m.get("denoise_s.n", 1 if "denoise_s" in m else 0)),
                vram_gib=max(device) if device else None,
                host_gib=max(host) if host else None,
                correctness=t.get("tune.correctness", ""),
                complexity=int(t.get("tune.complexity", "0")),
                overrides=json.loads(t.get("tune.overrides", "[]")),
                run_id=run.run_id,
            )
        )
    return sorted(rows, key=lambda r: r.number)


def tune_parent(client, parent_run_id: str):
    """A tuning's parent run (tracking.queries.LoggedRun); a run that is not one is unusable input."""
    from diffexp.tracking.queries import get_run

    parent = get_run(client, parent_run_id)
    if parent.tags.get("diffexp.role") != names.TUNE_ROLE:
        raise DiffexpError(
            f"run {parent_run_id} is not a tuning's parent run (diffexp.role={parent.tags.get('diffexp.role')})"
        )
    return parent


def rebuild_from_folder(folder: Path, out: Path) -> tuple[list[Path], str]:
    """The report files of an untracked tuning's folder, written to `out`, and its summary lines."""
    data = read_summary(folder)
    rows = rows_from_summary(data)
    on_gpu = any(r.vram_gib is not None for r in rows)
    budget = data["tune"].get("vram_gib") if on_gpu else None
    budget = budget if budget is not None else data["tune"].get("host_gib")
    files = write_report(rows, data["winner"], budget, "peak VRAM" if on_gpu else "peak host RSS", out)
    lines = [f"tune.{k}: {data[k]}" for k in ("decided_by", "command", "sglang_command") if data.get(k)]
    if data.get("interrupted"):
        lines.append("interrupted")
    return files, "\n".join(lines)


def default_out(ref: str) -> Path:
    """Where `report tune REF` writes: reports/<parent run id> or reports/<the tuning folder's name>."""
    return Path("reports") / (Path(ref).resolve().name if names_a_folder(ref) else ref)


def rebuild_tune(ref: str, out: Optional[Path] = None, uri: Optional[str] = None) -> tuple[list[Path], str]:
    """The tuning's table and chart rebuilt from MLflow (REF: its parent run id) or from its folder (tune.json)
    into `out` (default: default_out); and the winner's lines as the tuning recorded them."""
    out = out or default_out(ref)
    if names_a_folder(ref):  # an untracked tuning, read where MLflow may not be installed (a GPU box)
        return rebuild_from_folder(Path(ref), out)
    from diffexp.tracking.store import client_for

    client = client_for(uri)
    parent = tune_parent(client, ref)
    rows = rows_from_store(client, ref)
    winner = parent.tags.get(names.TUNE_WINNER, "None")
    winner = int(winner) if winner != "None" else None
    vram = parent.params.get("tune.vram_gib", "None")
    on_gpu = any(r.vram_gib is not None for r in rows)
    budget = float(vram) if on_gpu and vram != "None" else None
    if budget is None and parent.params.get("tune.host_gib", "None") != "None":
        budget = float(parent.params["tune.host_gib"])
    files = write_report(rows, winner, budget, "peak VRAM" if on_gpu else "peak host RSS", out)
    lines = [
        f"{k}: {parent.tags[k]}"
        for k in ("tune.decided_by", "tune.command", "tune.sglang_command")
        if parent.tags.get(k)
    ]
    lines += [f"{k}: {v}" for k, v in sorted(parent.tags.items()) if k.startswith("tune.gain.")]
    if parent.tags.get(names.TUNE_INTERRUPTED) == "true":
        lines.append(f"interrupted (run {parent.status})")
    return files, "\n".join(lines)
