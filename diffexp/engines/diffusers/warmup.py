"""Untimed generations before the measured ones: compile.warmup_runs of them, or (measure.warmup_until_stable)
as many as it takes for two consecutive ones' median step times to agree within measure.warmup_tolerance."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from statistics import median
from typing import Optional

from diffexp.config.schema import Config
from diffexp.engines.diffusers.setup import Loaded
from diffexp.measure import stats
from diffexp.measure.clocks import StageClock

log = logging.getLogger(__name__)


@dataclass
class Warmup:
    runs: int
    # None: not asked to settle (or a parallel run, whose ranks must agree on the count: not checked).
    settled: Optional[bool] = None
    # Median step time (ms) of each warmup generation, when settling was checked.
    step_ms: list[float] = field(default_factory=list)

    def tags(self) -> dict[str, str]:
        out = {"warmup_runs": str(self.runs)}
        if self.settled is not None:
            out["warmup.settled"] = str(self.settled).lower()
        return out


def planned_runs(cfg: Config) -> int:
    return cfg.compile.warmup_runs if (cfg.compile.enabled or cfg.compile.warmup) else 0


def _kwargs(cfg: Config, loaded: Loaded) -> dict:
    kwargs = dict(loaded.kwargs)
    if cfg.compile.warmup_steps and "num_inference_steps" in kwargs:
        kwargs["num_inference_steps"] = cfg.compile.warmup_steps
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
            return Warmup(runs)
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
    return Warmup(len(history), settled, history)
