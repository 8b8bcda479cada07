"""The tuner against an exhaustive grid over the same space and budget: the tuner's pick and the grid's best, the
ratio of their figures with its 95 % interval (the bootstrap of diffexp.measure.stats), the trials and wall time
each used, and the verdict of the goal "within 5 % of the grid's best in at most a third of the grid's trials"."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional

from diffexp import names
from diffexp.compare.noise import slower_by_at_most
from diffexp.compare.tunings import TunedTrial, Tuning
from diffexp.errors import DiffexpError
from diffexp.measure import stats

GOAL_WITHIN_PCT = 5.0
GOAL_TRIAL_FRACTION = Fraction(1, 3)
MET, NOT_MET, CANNOT_SAY = "met", "not met", "cannot say"
MARKDOWN_FILE, JSON_FILE = "grid_comparison.md", "grid_comparison.json"


@dataclass
class Side:
    """One tuning's part of the comparison: the configuration it stands for and what it cost."""

    ref: str
    search: str
    number: Optional[int]  # the trial's number in its tuning, or None when it has none
    trial: Optional[str]  # "trial N (name): overrides"
    median_s: Optional[float]
    n: int
    trials_used: int
    wall_s: Optional[float]
    space_size: Optional[int]
    visited: Optional[int]
    exhaustive: bool
    stopped: str


@dataclass
class GridComparison:
    space: str
    tuner: Side
    grid: Side
    # The tuner's pick's median over the grid's best's (> 1: the pick is slower), with the 95 % interval.
    ratio: Optional[float] = None
    ratio_ci95_low: Optional[float] = None
    ratio_ci95_high: Optional[float] = None
    within: Optional[bool] = None  # at most GOAL_WITHIN_PCT slower beyond the noise; None: cannot tell
    trials_within: bool = False  # the tuner's trials ≤ GOAL_TRIAL_FRACTION × the grid's points
    verdict: str = CANNOT_SAY
    why: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            **dataclasses.asdict(self),
            "goal": {"within_pct": GOAL_WITHIN_PCT, "trial_fraction": str(GOAL_TRIAL_FRACTION)},
        }


def work_overrides(overrides: list[str]) -> list[str]:
    """The run overrides that change what the trials run: where their records go (tracking.*) does not."""
    return [o for o in overrides if not o.lstrip("+~").startswith("tracking.")]


def mismatches(tuner: Tuning, grid: Tuning) -> tuple[list[str], list[str]]:
    """(why the two tunings are not over the same space and budget, notes on what could not be checked)."""
    problems, notes = [], []
    if grid.search != names.TUNE_GRID:
        problems.append(f"{grid.ref} is not a grid (tune.search={grid.search}): give the grid's run as --against")
    if tuner.search == names.TUNE_GRID:
        problems.append(f"{tuner.ref} is a grid: give the tuner's run first")
    if tuner.space_key is None or grid.space_key is None:
        notes.append("a side has no space fingerprint (recorded before it existed): the spaces compared by name")
        if tuner.space != grid.space:
            problems.append(f"spaces {tuner.space!r} and {grid.space!r}")
    elif tuner.space_key != grid.space_key:
        problems.append(f"spaces differ (fingerprints {tuner.space_key} and {grid.space_key})")
    for label, a, b in (
        ("VRAM budget", tuner.vram_gib, grid.vram_gib),
        ("host budget", tuner.host_gib, grid.host_gib),
        ("run overrides", work_overrides(tuner.run_overrides), work_overrides(grid.run_overrides)),
    ):
        if a != b:
            problems.append(f"{label}: {a} and {b}")
    return problems, notes


def goal_verdict(
    tuner_trials: int,
    grid_size: int,
    grid_exhaustive: bool,
    has_pick: bool,
    grid_has_best: bool,
    within: Optional[bool],
) -> tuple[str, list[str]]:
    """The goal's verdict and why: the trial count decides first (it needs no figure), then whether the grid is
    exhaustive (else its best is not the space's), then the figures."""
    bound = GOAL_TRIAL_FRACTION * grid_size
    if tuner_trials > bound:
        return NOT_MET, [f"the tuner ran {tuner_trials} trials, more than {GOAL_TRIAL_FRACTION} of {grid_size}"]
    if not grid_exhaustive:
        return CANNOT_SAY, ["the grid is not exhaustive: its best is not the best of the space"]
    if not grid_has_best:
        return CANNOT_SAY, ["no configuration of the space fits the budget and passes the review"]
    if not has_pick:
        return NOT_MET, ["the tuner found no configuration that fits and passes; the grid did"]
    if within is None:
        return CANNOT_SAY, [f"the ratio's interval straddles ×{1 + GOAL_WITHIN_PCT / 100:g}, or there is none"]
    if not within:
        return NOT_MET, [f"the tuner's pick is more than {GOAL_WITHIN_PCT:g} % slower, beyond the noise"]
    return MET, [f"within {GOAL_WITHIN_PCT:g} % beyond the noise, in {tuner_trials} of {grid_size} trials"]


def _side(tuning: Tuning, trial: Optional[TunedTrial]) -> Side:
    return Side(
        ref=tuning.ref,
        search=tuning.search,
        number=trial.number if trial else None,
        trial=trial.label() if trial else None,
        median_s=trial.median_s if trial else None,
        n=len(trial.sample) if trial else 0,
        trials_used=tuning.trials_used,
        wall_s=tuning.wall_s,
        space_size=tuning.space_size,
        visited=tuning.visited,
        exhaustive=tuning.exhaustive,
        stopped=tuning.stopped,
    )


def compare_to_grid(tuner: Tuning, grid: Tuning) -> GridComparison:
    """Two tunings over the same space and budget, else DiffexpError (unusable input)."""
    problems, notes = mismatches(tuner, grid)
    if problems:
        raise DiffexpError("not the same space and budget: " + "; ".join(problems))
    pick, best = tuner.pick, grid.fastest_feasible()
    c = GridComparison(tuner.space, _side(tuner, pick), _side(grid, best), notes=notes)
    if pick is not None and best is not None and pick.sample and best.sample:
        delta = stats.relative_delta(best.sample, pick.sample)  # the pick's change from the grid's best
        c.ratio = 1 + delta.pct / 100
        if delta.noise_known:
            c.ratio_ci95_low, c.ratio_ci95_high = 1 + delta.ci95_low_pct / 100, 1 + delta.ci95_high_pct / 100
        c.within = slower_by_at_most(delta, GOAL_WITHIN_PCT)
    c.trials_within = tuner.trials_used <= GOAL_TRIAL_FRACTION * grid.space_size
    c.verdict, c.why = goal_verdict(
        tuner.trials_used, grid.space_size, grid.exhaustive, pick is not None, best is not None, c.within
    )
    if not grid.exhaustive:
        c.why.append(f"grid: {grid.visited} of {grid.space_size} points ran (stopped: {grid.stopped or 'interrupted'})")
    if tuner.interrupted or grid.interrupted:
        c.notes.append("a side was interrupted: its trials are those that finished")
    return c


def _seconds(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.0f} s"


def _figure(side: Side) -> str:
    return "" if side.median_s is None else f"{side.median_s:.4g} s (n={side.n})"


def markdown(c: GridComparison) -> str:
    interval = (
        f" [{c.ratio_ci95_low:.3f}, {c.ratio_ci95_high:.3f}] (95 %)"
        if c.ratio_ci95_low is not None
        else " (no interval)"
    )
    ratio = f"×{c.ratio:.3f}{interval}" if c.ratio is not None else "none (a side has no figure)"
    g = c.grid
    coverage = f"{g.visited} of {g.space_size} points" + (" (exhaustive)" if g.exhaustive else " (NOT exhaustive)")
    rows = [
        ("run", c.tuner.ref, g.ref),
        ("search", c.tuner.search, g.search),
        ("configuration", c.tuner.trial or "no winner", g.trial or "nothing feasible"),
        ("denoise_s, median", _figure(c.tuner), _figure(g)),
        ("trials", str(c.tuner.trials_used), f"{g.trials_used}: {coverage}"),
        ("wall time", _seconds(c.tuner.wall_s), _seconds(g.wall_s)),
        ("stopped", c.tuner.stopped, g.stopped),
    ]
    lines = [
        f"# The tuner against the exhaustive grid: {c.space}",
        "",
        f"Goal: within {GOAL_WITHIN_PCT:g} % of the grid's best in at most {GOAL_TRIAL_FRACTION} of the grid's "
        f"trials → **{c.verdict}**",
        "",
        *[f"- {line}" for line in c.why],
        "",
        "| | tuner's pick | grid's best |",
        "|---|---|---|",
        *[f"| {label} | {a} | {b} |".replace("\n", " ") for label, a, b in rows],
        "",
        f"pick / best: {ratio}; the goal's bound ×{1 + GOAL_WITHIN_PCT / 100:g}",
        f"trials: {c.tuner.trials_used} of the grid's {g.space_size}; the goal's bound {GOAL_TRIAL_FRACTION}",
        *[f"note: {n}" for n in c.notes],
    ]
    return "\n".join(lines) + "\n"


def write(c: GridComparison, out: Path) -> list[Path]:
    """grid_comparison.md and grid_comparison.json in `out`, beside the tuning's trials table."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / MARKDOWN_FILE, out / JSON_FILE]
    files[0].write_text(markdown(c))
    files[1].write_text(json.dumps(c.to_dict(), indent=2))
    return files
