"""Untimed generations before the measured ones: compile.warmup_runs of them, or (measure.warmup_until_stable)
as many as it takes for two consecutive ones' median step times to agree within measure.warmup_tolerance."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Optional

from diffexp.config.schema import Config
from diffexp.engines import pipeline_setup
from diffexp.engines.diffusers.setup import Loaded
from diffexp.measure import stats
from diffexp.measure.clocks import StageClock

log = logging.getLogger(__name__)


@dataclass
class Warmup:
    runs: int
    # Steps of each warmup generation as run (compile.warmup_steps, or more where an expert needed them).
    steps: Optional[int] = None
    # None: not asked to settle (or a parallel run, whose ranks must agree on the count: not checked).
    settled: Optional[bool] = None
    # Median step time (ms) of each warmup generation, when settling was checked.
    step_ms: list[float] = field(default_factory=list)

    def tags(self) -> dict[str, str]:
        out = {"warmup_runs": str(self.runs)}
        if self.steps is not None and self.runs:
            out["warmup_steps"] = str(self.steps)
        if self.settled is not None:
            out["warmup.settled"] = str(self.settled).lower()
        return out


def planned_runs(cfg: Config) -> int:
    return cfg.compile.warmup_runs if (cfg.compile.enabled or cfg.compile.warmup) else 0


def _experts_reached(pipe: Any, steps: int) -> set[str]:
    """Which of a two-expert pipeline's DiTs (Wan2.2's `transformer` above the boundary timestep, `transformer_2`
    below it) a generation of `steps` steps calls, from the pipeline's own scheduler and boundary ratio."""
    experts = pipeline_setup.denoisers(pipe)
    ratio = getattr(getattr(pipe, "config", None), "boundary_ratio", None)
    if ratio is None or len(experts) < 2:
        return set(experts[:1])
    high, low = experts
    scheduler = copy.deepcopy(pipe.scheduler)  # set_timesteps changes the scheduler's state
    scheduler.set_timesteps(steps)
    boundary = ratio * scheduler.config.num_train_timesteps
    return {high if t >= boundary else low for t in scheduler.timesteps.tolist()}


def warmup_steps(cfg: Config, pipe: Any, run_steps: int) -> int:
    """compile.warmup_steps, raised where fewer steps would leave an expert the measured run calls uncompiled
    (its compile would land inside the measured denoise loop)."""
    asked = cfg.compile.warmup_steps
    if not asked or asked >= run_steps:
        return run_steps
    needed, reached = _experts_reached(pipe, run_steps), _experts_reached(pipe, asked)
    if reached >= needed:
        return asked
    steps = next(n for n in range(asked + 1, run_steps + 1) if _experts_reached(pipe, n) >= needed)
    log.warning(
        "compile.warmup_steps=%d reaches only %s of the experts a %d-step run calls (%s): warming up with %d steps",
        asked,
        ", ".join(sorted(reached)),
        run_steps,
        ", ".join(sorted(needed)),
        steps,
    )
    return steps


def _kwargs(cfg: Config, loaded: Loaded) -> dict:
    kwargs = dict(loaded.kwargs)
    if cfg.compile.warmup_steps and "num_inference_steps" in kwargs:
        kwargs["num_inference_steps"] = warmup_steps(cfg, loaded.pipe, kwargs["num_inference_steps"])
    return kwargs


def _timed_generation_ms(loaded: Loaded, kwargs: dict, clock: StageClock) -> float:
    """Median time between step ends (steps 1..n); the whole call when there are too few steps for that."""
    ends: list[float] = []

    def on_step_end(p, i, t, kw):
        ends.append(clock.now())
        return {}

    start = clock.now()
    loaded.pipe(**kwargs, generator=loaded.generator(), callback_on_step_end=on_step_end)
    gaps = [(b - a) * 1e3 for a, b in zip(ends, ends[1:])]
    return median(gaps) if len(gaps) >= 2 else (clock.now() - start) * 1e3


def warm_up(cfg: Config, loaded: Loaded, clock: StageClock, parallel: bool = False) -> Warmup:
    """Timed as the `warmup` stage (reported as warmup_s, never part of a measured figure)."""
    kwargs, runs = _kwargs(cfg, loaded), planned_runs(cfg)
    steps = kwargs.get("num_inference_steps")
    until_stable = cfg.measure.warmup_until_stable
    if until_stable and parallel:
        log.warning(
            "measure.warmup_until_stable: not with several ranks (they must agree on the count); %d run(s)", runs
        )
        until_stable = False
    with clock.stage("warmup"):
        if not until_stable:
            for _ in range(runs):
                loaded.pipe(**kwargs, generator=loaded.generator())
            return Warmup(runs, steps)
        history: list[float] = []
        tolerance, most = cfg.measure.warmup_tolerance, max(cfg.measure.max_warmup_runs, runs)
        while len(history) < most:
            history.append(_timed_generation_ms(loaded, kwargs, clock))
            if len(history) >= max(runs, 2) and stats.settled(history, tolerance):
                break
    settled = stats.settled(history, tolerance)
    log.log(
        logging.INFO if settled else logging.WARNING,
        "warmup %s after %d generation(s): median step %s ms",
        "settled" if settled else "did NOT settle",
        len(history),
        ", ".join(f"{ms:.1f}" for ms in history),
    )
    return Warmup(len(history), steps, settled, history)
