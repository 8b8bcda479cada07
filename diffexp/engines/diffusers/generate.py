"""One process's run of the in-process engine: load/setup → warmup → measured repeats (with the GPU sampled)
→ outputs, folded into one RunResult. Also one rank's part of a parallel run."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Optional

import torch

from diffexp import rundir
from diffexp.config.schema import Config
from diffexp.engines import outputs, profiling
from diffexp.engines.diffusers import measured as measured_step
from diffexp.engines.diffusers import setup, warmup
from diffexp.engines.diffusers.device import cap_vram
from diffexp.measure.aggregate import fold_repeats
from diffexp.measure.clocks import StageClock, peak_memory_gib, reset_peak_memory
from diffexp.measure.gpu import GpuSampler, write_samples
from diffexp.results import RunResult

REPEATS_FILE, GPU_SAMPLES_FILE = "repeats.json", "gpu_samples.csv"


def generate(
    cfg: Config,
    run_dir: Path,
    device: torch.device,
    parallelize: Optional[Callable[[Any], None]] = None,
    barrier: Optional[Callable[[], None]] = None,
    save_outputs: bool = True,
) -> RunResult:
    """Load, set up, warm up and time `measure.repeats` generations: a single-process run, or one rank's part.

    A rank passes `parallelize` (shards the loaded pipeline, before compile), `barrier` (every clock reading
    waits for all ranks), `save_outputs=False` on all ranks but rank 0 (which alone samples the GPUs and writes
    files). A profiled run's trace is only written here (artifact `trace_file`): the run reads it once the
    engine is done (and a parallel run's ranks are gone).
    """
    run_dir = Path(run_dir)
    clock = StageClock(device, barrier=barrier)
    loaded = setup.load(cfg, device, clock, parallelize)
    cap_vram(device, cfg.engine.vram_cap_gib)
    warm = warmup.warm_up(cfg, loaded, clock, parallel=barrier is not None)

    reset_peak_memory(device)
    sample = cfg.measure.gpu_sampling and device.type == "cuda" and save_outputs
    sampler = GpuSampler(cfg.measure.gpu_sample_hz) if sample else None
    with sampler if sampler is not None else nullcontext():
        run = measured_step.measure(
            cfg, loaded, device, run_dir, measured_step.resolve_repeats(cfg, device), barrier=barrier
        )
    peaks = peak_memory_gib(device)

    result = fold_repeats(run.shots, seed=cfg.measure.seed)
    result.stages_s["load"] = clock.totals_s["load"]
    result.peak_mem_gib = max(peaks.values()) if peaks else None
    result.peak_mem_gib_per_device = peaks
    result.warmup_excluded = warm.runs > 0
    if warm.runs:
        result.extra_metrics["warmup_s"] = clock.totals_s["warmup"]
    result.extra_metrics.update(loaded.build_metrics)
    result.tags.update(
        {
            "device": str(device),
            "offload.placement": ", ".join(f"{k}={v}" for k, v in loaded.placement.items()),
            "kernels.patched": ", ".join(loaded.patched) or "none",
            **warm.tags(),
        }
    )
    if sampler is not None and sampler.active:
        metrics, tags = sampler.summary()
        result.extra_metrics.update(metrics)
        result.tags.update(tags)
        result.artifacts["gpu_samples"] = str(write_samples(sampler.samples, run_dir / GPU_SAMPLES_FILE))
    if save_outputs:
        result.outputs = _save(cfg, run.output, run_dir)
        # What the pipeline made, against what it was asked (it rounds sizes off its grid with only a warning).
        asked = loaded.kwargs
        result.tags.update(
            outputs.output_shape_tags(result.outputs, asked.get("width"), asked.get("height"), asked.get("num_frames"))
        )
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / REPEATS_FILE).write_text(json.dumps(result.repeats, indent=1))
        result.artifacts["repeats"] = str(run_dir / REPEATS_FILE)
    if run.profiler is not None:
        result.profiled = True
        result.extra_metrics, more = _profile(cfg, run.profiler, result.extra_metrics)
        result.artifacts.update(more)
    return result


def _save(cfg: Config, output, run_dir: Path) -> list[str]:
    frames = getattr(output, "frames", None)
    if frames is not None:
        return outputs.save_videos(frames, run_dir / rundir.OUTPUTS, fps=cfg.model.sampling.fps or 16)
    return outputs.save_images(output.images, run_dir / rundir.OUTPUTS)


def _profile(cfg: Config, profiler, metrics: dict) -> tuple[dict, dict]:
    """The trace is written here and analysed by the run once the engine is done (diffexp.profile.of_run)."""
    trace = profiler.export(f"{cfg.model.name}-rank0")
    return metrics, {rundir.TRACES: str(trace.parent), profiling.TRACE_FILE: str(trace)}
