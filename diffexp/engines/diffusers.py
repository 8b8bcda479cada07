"""The in-process engine: runs a diffusers pipeline for the composed config and measures it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Optional

import torch
from tqdm.auto import tqdm

from diffexp.config.schema import Config
from diffexp.engines import outputs, pipeline_setup, profiling
from diffexp.measure.clocks import StageClock, StepClock, peak_memory_gib, reset_peak_memory
from diffexp.models import load_pipeline
from diffexp.results import RunResult

log = logging.getLogger(__name__)

# Preset names SGLang accepts for resolution, as (width, height).
RESOLUTION_PRESETS = {"480p": (832, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
VIDEO_TASKS = ("t2v", "ti2v", "i2v")
DEFAULT_SEED = 42


def resolve_device(cfg: Config) -> torch.device:
    if cfg.engine.device == "cpu" or (cfg.engine.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    # engine.gpus (e.g. a GPU lease from a parallel sweep) names the device as CUDA_VISIBLE_DEVICES does;
    # else the first visible one.
    from diffexp.sweeps.gpu_lease import torch_index

    return torch.device("cuda", torch_index(cfg.engine.gpus.split(",")[0]) if cfg.engine.gpus else 0)


def call_kwargs(cfg: Config, pipe) -> dict:
    """Pipeline-call arguments from the sampling config; ones this pipeline does not take are dropped with a warning."""
    import inspect

    s = cfg.model.sampling
    width, height = s.width, s.height
    if (width is None or height is None) and s.resolution:
        width, height = RESOLUTION_PRESETS[s.resolution]
    kwargs = {
        "prompt": s.prompt,
        "negative_prompt": s.negative_prompt,
        "width": width,
        "height": height,
        "num_inference_steps": s.num_inference_steps,
        "guidance_scale": s.guidance_scale,
        "num_frames": s.num_frames if cfg.model.task in VIDEO_TASKS else None,
    }
    if s.image_path:
        from PIL import Image

        kwargs["image"] = Image.open(s.image_path).convert("RGB")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    kwargs.update(cfg.model.call_kwargs)
    accepted = inspect.signature(pipe.__call__).parameters
    dropped = [k for k in kwargs if k not in accepted]
    if dropped:
        log.warning("%s does not take %s; not passed", type(pipe).__name__, ", ".join(dropped))
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    kwargs["output_type"] = "np" if cfg.model.task in VIDEO_TASKS else "pil"
    return kwargs


class DiffusersEngine:
    def dry_run_text(self, cfg: Config) -> str:
        return (
            f"in-process diffusers run: {cfg.model.pipeline} from {cfg.model.path} (weights={cfg.model.weights}), "
            f"device={cfg.engine.device}, compile={cfg.compile.enabled}, offload={cfg.offload.name}, "
            f"attention={cfg.attention.backend or 'default'}, kernels={cfg.kernels.impl}"
        )

    def run(self, cfg: Config, run_dir: Path) -> RunResult:
        if cfg.parallel.num_gpus > 1:
            from diffexp.engines.distributed.launch import run_ranks

            return run_ranks(cfg, run_dir)
        if cfg.profile.mode == "nsys":
            from diffexp.engines.nsys_child import run_under_nsys

            return run_under_nsys(cfg, run_dir)
        return generate(cfg, run_dir, resolve_device(cfg))


def generate(
    cfg: Config,
    run_dir: Path,
    device: torch.device,
    parallelize: Optional[Callable[[Any], None]] = None,
    barrier: Optional[Callable[[], None]] = None,
    save_outputs: bool = True,
    analyze_profile: bool = True,
) -> RunResult:
    """Load, set up, warm up and time one generation: a single-process run, or one rank's part of a parallel run.

    A rank passes `parallelize` (shards the loaded pipeline, before compile), `barrier` (every clock reading
    waits for all ranks), `save_outputs=False` on all ranks but rank 0, and `analyze_profile=False`: the
    trace is then only written (artifact `trace_file`), and the launcher reads it once the ranks are gone.
    """
    clock = StageClock(device, barrier=barrier)
    with clock.stage("load"):
        pipe = load_pipeline(cfg.model, device)
        placement = pipeline_setup.apply_offload(pipe, cfg.offload, device)
        pipeline_setup.apply_attention(pipe, cfg.attention.backend)
        patched = pipeline_setup.apply_kernels(pipe, cfg.kernels.impl)
        if parallelize is not None:
            parallelize(pipe)
        pipeline_setup.apply_compile(pipe, cfg)
    pipe.set_progress_bar_config(disable=True)
    kwargs = call_kwargs(cfg, pipe)
    seed = cfg.model.sampling.seed if cfg.model.sampling.seed is not None else DEFAULT_SEED

    warmup_runs = cfg.compile.warmup_runs if (cfg.compile.enabled or cfg.compile.warmup) else 0
    warmup_kwargs = dict(kwargs)
    if cfg.compile.warmup_steps and "num_inference_steps" in warmup_kwargs:
        warmup_kwargs["num_inference_steps"] = cfg.compile.warmup_steps
    with clock.stage("warmup"):
        for _ in range(warmup_runs):
            pipe(**warmup_kwargs, generator=torch.Generator("cpu").manual_seed(seed))

    reset_peak_memory(device)
    measured = StageClock(device, barrier=barrier)
    steps = StepClock(measured)
    profiler = _profiler_for(cfg, device, run_dir)
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
        stack.enter_context(_timed_method(pipe, "encode_prompt", measured, "text_encode"))
        stack.enter_context(_timed_method(pipe.vae, "decode", measured, "vae_decode"))

        def on_transformer_call(*_):
            if steps.on_transformer_call() and profiler is not None:
                profiler.on_step_start()

        for name in pipeline_setup.denoisers(pipe):
            handle = getattr(pipe, name).register_forward_pre_hook(on_transformer_call)
            stack.callback(handle.remove)
        bar = stack.enter_context(
            tqdm(total=cfg.model.sampling.num_inference_steps, desc="denoise", unit="step", leave=False)
        )

        def on_step_end(p, i, t, kw):
            bar.update(1)
            out = steps.on_step_end(p, i, t, kw)
            if profiler is not None:
                profiler.on_step_end()
            return out

        log.info("measured generation: %s denoise steps", kwargs.get("num_inference_steps", "default"))
        with measured.stage("e2e"):
            output = pipe(
                **kwargs, generator=torch.Generator("cpu").manual_seed(seed), callback_on_step_end=on_step_end
            )
    peaks = peak_memory_gib(device)

    frames = getattr(output, "frames", None)
    if not save_outputs:
        saved = []
    elif frames is not None:
        saved = outputs.save_videos(frames, run_dir / "outputs", fps=cfg.model.sampling.fps or 16)
    else:
        saved = outputs.save_images(output.images, run_dir / "outputs")

    profile_metrics, profile_artifacts = {}, {}
    if profiler is not None:
        trace = profiler.export(f"{cfg.model.name}-rank0")
        profile_artifacts = {"traces": str(trace.parent)}
        if analyze_profile:
            profile_metrics, more = profiling.analyze_run_trace(cfg, trace, run_dir)
            profile_artifacts.update(more)
        else:
            profile_artifacts[profiling.TRACE_FILE] = str(trace)

    return RunResult(
        denoise_s=steps.denoise_s,
        denoise_step_ms=steps.step_ms,
        text_encode_s=measured.totals_s.get("text_encode"),
        vae_decode_s=measured.totals_s.get("vae_decode"),
        e2e_s=measured.totals_s["e2e"],
        peak_mem_gib=max(peaks.values()) if peaks else None,
        peak_mem_gib_per_device=peaks,
        stages_s={**measured.totals_s, "load": clock.totals_s["load"]},
        extra_metrics={**({"warmup_s": clock.totals_s["warmup"]} if warmup_runs else {}), **profile_metrics},
        outputs=saved,
        artifacts=profile_artifacts,
        profiled=profiler is not None,
        tags={
            "device": str(device),
            "offload.placement": ", ".join(f"{k}={v}" for k, v in placement.items()),
            "kernels.patched": ", ".join(patched) or "none",
            "warmup_runs": str(warmup_runs),
        },
        warmup_excluded=warmup_runs > 0,
    )


def _profiler_for(cfg: Config, device: torch.device, run_dir: Path) -> profiling.StepProfiler | None:
    # nsys profiles from outside the process (engines/nsys_child.py): nothing to capture in here.
    if cfg.profile.mode != "torch":
        return None
    return profiling.StepProfiler(device, cfg.profile.num_steps, cfg.profile.all_stages, run_dir / "traces")


class _timed_method:
    """Temporarily wrap `obj.name` so every call is timed into `clock` under `stage`."""

    def __init__(self, obj, name: str, clock: StageClock, stage: str):
        self.obj, self.name, self.clock, self.stage = obj, name, clock, stage

    def __enter__(self):
        original = getattr(self.obj, self.name)

        def timed(*args, **kwargs):
            with self.clock.stage(self.stage):
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
