"""The verdict of a tuning: the fastest feasible trial, kept only when it beats the runner-up beyond the measured
noise (diffexp.compare.noise), else the simplest of those within noise of it; its gain over each anchor as a ratio
with its interval; the command lines that reproduce it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from diffexp.compare.noise import SLOWER, verdict
from diffexp.tune import gate
from diffexp.tune.search import Search, Trial


@dataclass
class Gain:
    anchor: str
    ratio: Optional[float] = None  # anchor's median / winner's: > 1 means the winner is faster
    ci95_low: Optional[float] = None
    ci95_high: Optional[float] = None
    verdict: str = ""
    note: str = ""

    def text(self) -> str:
        if self.ratio is None:
            return f"{self.anchor}: {self.note}"
        interval = f" [{self.ci95_low:.3f}, {self.ci95_high:.3f}]" if self.ci95_low is not None else " (no interval)"
        return f"{self.anchor}: ×{self.ratio:.3f}{interval} ({self.verdict})"


@dataclass
class Outcome:
    winner: Optional[Trial]
    runner_up: Optional[Trial] = None
    decided_by: str = ""  # "beats the runner-up beyond noise" | "tie: …"
    noise_text: str = ""
    gains: list[Gain] = field(default_factory=list)
    command: str = ""
    sglang_command: str = ""
    sglang_notes: list[str] = field(default_factory=list)


def choose(trials: list[Trial], min_effect_pct: float) -> tuple[Optional[Trial], Optional[Trial], str, str]:
    feasible = sorted((t for t in trials if t.state == gate.FEASIBLE), key=lambda t: t.median_s)
    if not feasible:
        return None, None, "no trial fits the budget and passes the review", ""
    fastest = feasible[0]
    if len(feasible) == 1:
        return fastest, None, "the only feasible trial", ""
    runner = feasible[1]
    v = verdict(fastest.sample, runner.sample, min_effect_pct=min_effect_pct)
    if v.verdict == SLOWER:
        return fastest, runner, "beats the runner-up beyond the noise", f"runner-up {runner.name} vs winner: {v.text()}"
    # Not separable from the fastest: the simplest of those the noise cannot tell from it (fewest departures from
    # the reference: fewer offloads, no compile, default kernels), then the faster.
    tied = [t for t in feasible if verdict(fastest.sample, t.sample, min_effect_pct=min_effect_pct).verdict != SLOWER]
    pick = min(tied, key=lambda t: (t.point.complexity, t.median_s))
    names = ", ".join(t.name for t in tied)
    return (
        pick,
        (fastest if pick is not fastest else runner),
        f"tie within noise among {names}: the simplest wins",
        (f"runner-up {runner.name} vs fastest {fastest.name}: {v.text()}"),
    )


def gain_over(winner: Trial, anchor: Trial, min_effect_pct: float) -> Gain:
    if anchor.state != gate.FEASIBLE:
        return Gain(anchor.name, note=f"anchor {anchor.state}: {anchor.reason}")
    if anchor is winner:
        return Gain(anchor.name, 1.0, 1.0, 1.0, "the anchor is the winner")
    v = verdict(anchor.sample, winner.sample, min_effect_pct=min_effect_pct)  # the winner's change from the anchor
    d = v.delta
    ratio = 1 / (1 + d.pct / 100)
    if not d.noise_known:
        return Gain(anchor.name, ratio, verdict=v.verdict)
    return Gain(anchor.name, ratio, 1 / (1 + d.ci95_high_pct / 100), 1 / (1 + d.ci95_low_pct / 100), v.verdict)


def diffexp_command(search: Search, trial: Trial) -> str:
    env = [f"{k}={shlex.quote(v)}" for k, v in sorted(trial.point.env.items())]
    return " ".join([*env, shlex.join(["python", "-m", "diffexp", *search.command_overrides(trial.point)])])


def sglang_command(search: Search, trial: Trial) -> tuple[str, list[str]]:
    """The `sglang generate` line the same overrides make with engine=sglang (built, not run: the dry run's
    command builder, diffexp.engines.sglang.flags), and what it cannot carry over."""
    from diffexp.engines.sglang import flags
    from diffexp.engines.sglang.engine import resolve_model_path
    from diffexp.errors import DiffexpError
    from diffexp.tune.search import composed

    overrides = [o for o in search.command_overrides(trial.point) if not o.startswith("engine.vram_cap_gib=")]
    notes = []
    try:
        cfg = composed([*overrides, "engine=sglang"])
        if cfg.model.weights == "random":
            cfg = composed([*overrides, "engine=sglang", "model.weights=pretrained"])
            notes.append("model.weights=random → the checkpoint (sglang generate loads checkpoints only)")
        if cfg.kernels.impl != "torch":
            notes.append(f"kernels={cfg.kernels.impl}: diffexp's kernels/ have no sglang flag")
        problems = flags.problems(cfg)
        if problems:
            return "", notes + problems
        paths = flags.RunPaths(run_dir=Path(search.out) / "sglang", model_path=resolve_model_path(cfg))
    except DiffexpError as exc:
        return "", notes + [str(exc)]
    return shlex.join(flags.command(cfg, paths)), notes


def decide(search: Search, anchors: list[Trial]) -> Outcome:
    winner, runner, decided_by, noise_text = choose(search.trials, search.tcfg.min_effect_pct)
    outcome = Outcome(winner, runner, decided_by, noise_text)
    if winner is None:
        return outcome
    outcome.gains = [gain_over(winner, a, search.tcfg.min_effect_pct) for a in anchors]
    outcome.command = diffexp_command(search, winner)
    outcome.sglang_command, outcome.sglang_notes = sglang_command(search, winner)
    return outcome
