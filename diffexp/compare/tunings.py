"""A tuning read back for a comparison: each trial's state and measured sample, its pick, what it covered of its
space and how long it took; from its MLflow parent run (RUN: the parent's run id) or from its folder (tune.json),
as `python -m diffexp.report tune` finds a tuning."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Optional

from diffexp import names
from diffexp.reports.tune import names_a_folder, read_summary, rows_from_store, tune_parent
from diffexp.tracking.samples import recorded_sample


@dataclass
class TunedTrial:
    number: int
    name: str
    state: str
    overrides: list[str] = field(default_factory=list)
    sample: list[float] = field(default_factory=list)  # the measured repeats of denoise_s

    @property
    def median_s(self) -> Optional[float]:
        return median(self.sample) if self.sample else None

    def label(self) -> str:
        name = "" if self.name == f"trial {self.number}" else f" ({self.name})"
        return f"trial {self.number}{name}: {' '.join(self.overrides) or '(no overrides)'}"


@dataclass
class Tuning:
    ref: str  # the parent run id or the folder it was read from
    space: str
    search: str
    space_key: Optional[str]  # None: recorded before the fingerprint existed
    vram_gib: Optional[float]
    host_gib: Optional[float]
    run_overrides: list[str]
    trials: list[TunedTrial]
    winner: Optional[int]
    space_size: Optional[int]
    visited: Optional[int]
    exhaustive: bool
    stopped: str
    interrupted: bool
    wall_s: Optional[float]
    trials_used: int

    @property
    def pick(self) -> Optional[TunedTrial]:
        return next((t for t in self.trials if t.number == self.winner), None)

    def fastest_feasible(self) -> Optional[TunedTrial]:
        """The best configuration it found: the feasible (fits the budget, passed the review) trial with the
        lowest median."""
        feasible = [t for t in self.trials if t.state == names.TUNE_FEASIBLE and t.median_s is not None]
        return min(feasible, key=lambda t: t.median_s) if feasible else None


def _number(value) -> Optional[float]:
    return None if value in (None, "None", "") else float(value)


def from_folder(folder: Path) -> Tuning:
    data = read_summary(folder)
    coverage = data.get("coverage", {})
    return Tuning(
        ref=str(folder),
        space=data["space"],
        search=data.get("search", names.TUNE_TPE),
        space_key=data.get("space_key"),
        vram_gib=_number(data["tune"].get("vram_gib")),
        host_gib=_number(data["tune"].get("host_gib")),
        run_overrides=list(data["run_overrides"]),
        trials=[
            TunedTrial(t["number"], t["name"], t["state"], list(t["overrides"]), list(t["sample"]))
            for t in data["trials"]
        ],
        winner=data["winner"],
        space_size=coverage.get("size"),
        visited=coverage.get("visited"),
        exhaustive=bool(coverage.get("exhaustive", False)),
        stopped=data.get("stopped", ""),
        interrupted=bool(data.get("interrupted")),
        wall_s=data.get("wall_s"),
        trials_used=len(data["trials"]),
    )


def from_store(client, parent_run_id: str) -> Tuning:
    """The parent's params and tags, and each trial's last stage with its repeats as MLflow holds them."""
    parent = tune_parent(client, parent_run_id)
    p, t = parent.params, parent.tags
    rows = rows_from_store(client, parent_run_id)
    trials = [
        TunedTrial(r.number, r.name, r.state, r.overrides, recorded_sample(client, r.run_id) if r.run_id else [])
        for r in rows
    ]
    size, visited = _number(t.get(names.TUNE_SPACE_SIZE)), _number(t.get(names.TUNE_VISITED))
    winner = _number(t.get(names.TUNE_WINNER))
    return Tuning(
        ref=parent_run_id,
        space=p.get("tune.name", ""),
        search=p.get(names.TUNE_SEARCH, names.TUNE_TPE),
        space_key=t.get(names.TUNE_SPACE_KEY),
        vram_gib=_number(p.get("tune.vram_gib")),
        host_gib=_number(p.get("tune.host_gib")),
        run_overrides=json.loads(p.get(names.TUNE_RUN_OVERRIDES, "[]")),
        trials=trials,
        winner=int(winner) if winner is not None else None,
        space_size=int(size) if size is not None else None,
        visited=int(visited) if visited is not None else None,
        exhaustive=t.get(names.TUNE_EXHAUSTIVE) == "true",
        stopped=t.get(names.TUNE_STOPPED, ""),
        interrupted=t.get(names.TUNE_INTERRUPTED) == "true",
        wall_s=parent.metrics.get(names.TUNE_WALL_S),
        # A trial that never started has no child when an untracked tuning is logged: the parent's count has it.
        trials_used=int(t.get(names.TUNE_TRIALS, len(rows))),
    )


def load(ref: str, uri: Optional[str] = None) -> Tuning:
    """REF: a tuning's folder (holding tune.json) or its parent run id in the store at `uri`."""
    if names_a_folder(ref):
        return from_folder(Path(ref))
    from diffexp.tracking.store import client_for

    return from_store(client_for(uri), ref)
