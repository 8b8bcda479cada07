"""The tuner's own config: a search space from conf/tune/<name>.yaml, typed, with `tune.*` overrides on top.

    python -m diffexp.tune model=flux1_dev model.weights=random tune=image tune.vram_gib=24

`tune=<name>` (or a path to a YAML file) picks the space; `tune.<field>=value` sets a field of TuneConfig;
every other argument is a run override, as `python -m diffexp` takes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from diffexp import names
from diffexp.config.store import CONF_DIR
from diffexp.errors import ConfigError

TUNE_DIR = CONF_DIR / "tune"
IMAGE_TASKS = ("t2i", "t2i_turbo", "image_edit")
TPE, GRID = names.TUNE_TPE, names.TUNE_GRID


@dataclass
class ParamSpec:
    """One dimension of the space: named choices (each a list of run overrides, or {overrides, env}), or a
    numeric range of one override key. The first choice is the simplest (the reference's, the tie-break's)."""

    choices: dict[str, Any] = field(default_factory=dict)
    # A numeric range: key=value with value in [low, high] (step: a grid; log: log scale).
    key: Optional[str] = None
    low: Optional[float] = None
    high: Optional[float] = None
    step: Optional[float] = None
    log: bool = False
    # Only searched when each named param has one of these labels (e.g. prefetch only with layerwise offload).
    when: dict[str, list[str]] = field(default_factory=dict)
    # Lossy choices (sparse or quantised attention, lower precision, fewer steps): searched only with allow_lossy.
    lossy: list[str] = field(default_factory=list)
    # Searched only with at least this many visible GPUs (parallel topology), or only on CUDA (offloads).
    min_gpus: int = 1
    cuda_only: bool = False


@dataclass
class TuneConfig:
    name: str = "custom"
    description: str = ""
    space: dict[str, ParamSpec] = field(default_factory=dict)
    # Overrides every trial gets (measure settings, warmup); part of the winner's command line.
    base: list[str] = field(default_factory=list)
    # Fixed configurations run as trials of the tuning: name -> overrides (or {overrides, env}).
    anchors: dict[str, Any] = field(default_factory=dict)
    # Also run SGLang's --performance-mode auto placement for this budget (diffexp.tune.auto_mode) on CUDA.
    sglang_auto_anchor: bool = True
    # Budgets: the CUDA allocator is capped at vram_gib in every trial; host_gib bounds the trial's peak RSS.
    vram_gib: Optional[float] = None
    host_gib: Optional[float] = None
    allow_lossy: bool = False
    # tpe: Optuna's TPESampler (seeded, constrained) after the reference and the anchors. grid: every point of the
    # space once, in an order Optuna's BruteForceSampler draws (seeded), the reference first and no anchors; it
    # is exhaustive only when the trial and time budgets let every point run (set max_trials to the grid's size).
    search: str = TPE
    # Search budget: trials (anchors and the reference included) and/or wall time.
    max_trials: int = 20
    max_minutes: Optional[float] = None
    # A trial whose probe (probe_repeats measured generations) is slower than the best so far by more than this
    # fraction stops there, recorded as pruned.
    prune_margin: float = 0.2
    probe_repeats: int = 1
    # measure.repeats of a full trial; None: 5 on a GPU, 3 on CPU.
    repeats: Optional[int] = None
    seed: int = 0
    # The winner must beat the runner-up by more than this (diffexp.compare.noise), else the simpler one wins.
    min_effect_pct: float = 2.0
    # review.reference for every trial; None: the reference trial (the space's first choices, resident).
    reference: Optional[str] = None
    # Where the tuning's files go; None: outputs/tune/<time>.
    out: Optional[str] = None
    trial_timeout_s: float = 1800.0
    # Continue the untracked tuning in `out` from its tune.json: its finished trials are kept (re-read from their
    # folders), their points are not run again, max_trials counts them, max_minutes is this session's. A grid
    # longer than one sitting is run as several sessions of one tuning.
    resume: bool = False


def space_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    path = TUNE_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in TUNE_DIR.glob("*.yaml"))
        raise ConfigError([f"tune={name!r}: no file {path}; known spaces: {', '.join(known)}"])
    return path


def split_overrides(argv: list[str]) -> tuple[Optional[str], list[str], list[str]]:
    """(space name, tune.* overrides, run overrides)."""
    name, tune, run = None, [], []
    for arg in argv:
        if arg.startswith("tune="):
            name = arg.partition("=")[2]
        elif arg.startswith("tune."):
            tune.append(arg[len("tune.") :])
        else:
            run.append(arg)
    return name, tune, run


def default_space(task: str, weights: str) -> str:
    """The built-in tiny models get the CPU space; real models the space of their task."""
    if weights == "tiny":
        return "tiny_cpu"
    return "image" if task in IMAGE_TASKS else "video"


def load_tune_config(name: str, overrides: list[str]) -> TuneConfig:
    """The space file merged onto TuneConfig, then the tune.* overrides; an unknown key or a wrong type is a
    ConfigError naming it."""
    try:
        merged = OmegaConf.merge(
            OmegaConf.structured(TuneConfig), OmegaConf.load(space_path(name)), OmegaConf.from_dotlist(overrides)
        )
        cfg: TuneConfig = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except ConfigError:
        raise
    except Exception as exc:  # omegaconf's validation errors name the key and the value
        raise ConfigError([f"tune={name}: {exc}".splitlines()[0]]) from exc
    problems = []
    for pname, spec in cfg.space.items():
        if bool(spec.choices) == (spec.key is not None):
            problems.append(f"tune.space.{pname}: give either choices or key with low/high")
        if spec.key is not None and (spec.low is None or spec.high is None):
            problems.append(f"tune.space.{pname}: a range needs low and high")
        for other in spec.when:
            if other not in cfg.space:
                problems.append(f"tune.space.{pname}.when: no param {other!r}")
    if cfg.search not in (TPE, GRID):
        problems.append(f"tune.search={cfg.search}: one of {TPE}, {GRID}")
    if cfg.search == GRID:
        problems += [
            f"tune.space.{pname}: a grid needs a step for the range (low, high, step)"
            for pname, spec in cfg.space.items()
            if spec.key is not None and spec.step is None
        ]
    if not 0 <= cfg.prune_margin:
        problems.append(f"tune.prune_margin={cfg.prune_margin}: must be >= 0")
    if cfg.max_trials < 1:
        problems.append(f"tune.max_trials={cfg.max_trials}: must be at least 1")
    if problems:
        raise ConfigError(problems)
    return cfg
