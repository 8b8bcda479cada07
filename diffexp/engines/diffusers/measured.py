"""The measured generations (repeats): each one timed after a device synchronize, its denoise loop from the
first transformer call of step 0 to the step-end callback of the last step, text encoding and VAE decode around
the pipeline's `encode_prompt` and `vae.decode`. Every repeat's figures are kept."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from tqdm.auto import tqdm

from diffexp import rundir
from diffexp.config.schema import Config
from diffexp.engines import pipeline_setup, profiling
from diffexp.engines.diffusers.setup import Loaded
from diffexp.measure.clocks import StageClock, StepClock
from diffexp.results import RunResult

log = logging.getLogger(__name__)

GPU_REPEATS, CPU_REPEATS = 5, 1


def resolve_repeats(cfg: Config, device: torch.device) -> int:
    """measure.repeats, or 5 on a GPU and 1 on CPU; 1 when profiling (a profiled figure is no benchmark)."""
    if cfg.profile.mode == "torch":
        return 1
    if cfg.measure.repeats is not None:
        return cfg.measure.repeats
    return GPU_REPEATS if device.type == "cuda" else CPU_REPEATS


@dataclass
class Measured:
    shots: list[RunResult]  # one per repeat, in order
    output: Any  # the last repeat's pipeline output (every repeat generates the same)
    profiler: Optional[profiling.StepProfiler] = None


@dataclass
class _Window:
    """The clocks of the repeat in progress: the hooks are installed once and read the current window."""

    device: torch.device
    barrier: Optional[Callable[[], None]]
    clock: StageClock = field(init=False)
    steps: StepClock = field(init=False)

    def __post_init__(self):
        self.next()

    def next(self) -> None:
        self.clock = StageClock(self.device, barrier=self.barrier)
        self.steps = StepClock(self.clock)

    def shot(self) -> RunResult:
        totals = self.clock.totals_s
        return RunResult(
            denoise_s=self.steps.denoise_s,
            denoise_step_ms=self.steps.step_ms,
            text_encode_s=totals.get("text_encode"),
            vae_decode_s=totals.get("vae_decode"),
            e2e_s=totals["e2e"],
            stages_s=dict(totals),
        )


def _profiler_for(cfg: Config, device: torch.device, run_dir: Path) -> Optional[profiling.StepProfiler]:
    # nsys profiles from outside the process (engines/nsys_child.py): nothing to capture in here.
    if cfg.profile.mode != "torch":
        return None
    return profiling.StepProfiler(device, cfg.profile.num_steps, cfg.profile.all_stages, run_dir / rundir.TRACES)


def measure(
    cfg: Config,
    loaded: Loaded,
    device: torch.device,
    run_dir: Path,
    repeats: int,
    barrier: Optional[Callable[[], None]] = None,
) -> Measured:
    pipe = loaded.pipe
    window = _Window(device, barrier)
    profiler = _profiler_for(cfg, device, run_dir)
    shots: list[RunResult] = []
    output = None
    with ExitStack() as stack:
        if profiler is not None:
            if cfg.compile.enabled:
                # A compiled graph never calls hooks added to its sub-modules (and adding them before
                # compiling would break the graph at every block): step scopes only.
                log.info("profile: block scopes are recorded in eager runs only (compile=on)")
            else:
                for name in pipeline_setup.denoisers(pipe):
                    profiling.annotate_blocks(getattr(pipe, name), stack)
            stack.callback(profiler.stop)
            if cfg.profile.all_stages:
                profiler.start()
        stack.enter_context(_timed_method(pipe, "encode_prompt", window, "text_encode"))
        stack.enter_context(_timed_method(pipe.vae, "decode", window, "vae_decode"))

        def on_transformer_call(*_):
            if window.steps.on_transformer_call() and profiler is not None:
                profiler.on_step_start()

        for name in pipeline_setup.denoisers(pipe):
            handle = getattr(pipe, name).register_forward_pre_hook(on_transformer_call)
            stack.callback(handle.remove)
        total = (cfg.model.sampling.num_inference_steps or 0) * repeats or None
        bar = stack.enter_context(tqdm(total=total, desc="denoise", unit="step", leave=False))

        def on_step_end(p, i, t, kw):
            bar.update(1)
            out = window.steps.on_step_end(p, i, t, kw)
            if profiler is not None:
                profiler.on_step_end()
            return out

        log.info(
            "measured generations: %d of %s denoise steps each",
            repeats,
            loaded.kwargs.get("num_inference_steps", "default"),
        )
        for _ in range(repeats):
            window.next()
            with window.clock.stage("e2e"):
                output = pipe(**loaded.kwargs, generator=loaded.generator(), callback_on_step_end=on_step_end)
            shots.append(window.shot())
    return Measured(shots, output, profiler)


class _timed_method:
    """Temporarily wrap `obj.name` so every call is timed into the current repeat's clock under `stage`."""

    def __init__(self, obj, name: str, window: _Window, stage: str):
        self.obj, self.name, self.window, self.stage = obj, name, window, stage

    def __enter__(self):
        original = getattr(self.obj, self.name)

        def timed(*args, **kwargs):
            with self.window.clock.stage(self.stage):
                return original(*args, **kwargs)

        setattr(self.obj, self.name, timed)
        return self

    def __exit__(self, *exc):
        # The wrapper was set on the instance: deleting it re-exposes the class method.
        try:
            delattr(self.obj, self.name)
        except AttributeError:
            pass
        return False
