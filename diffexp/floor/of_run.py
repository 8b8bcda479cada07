"""The floor of a composed run: what `python -m diffexp.floor` computes for a config, and what measure.floor=true
adds to the run's own result once its measurement is done (floor.* metrics and tags, <run dir>/floor/)."""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch

from diffexp import names, rundir
from diffexp.config.schema import RESOLUTION_PRESETS, Config
from diffexp.config.validate import VIDEO_TASKS
from diffexp.engines.diffusers.device import resolve_device
from diffexp.errors import DiffexpError
from diffexp.floor.capture import capture_step, count_step
from diffexp.floor.floor import Floor, measure_floor
from diffexp.floor.report import run_category_ms, summary_line, write_floor
from diffexp.results import RunResult

log = logging.getLogger(__name__)


@dataclass
class ConfigFloor:
    """One denoise step's floor for a config, with the title of its tables and what it describes."""

    floor: Floor
    title: str
    # floor.json's description of the run: model, shape, where it was counted, versions, date.
    context: dict[str, Any]


def shape_label(cfg: Config) -> str:
    """The asked size: width×height (a resolution preset as its size and name), ×frames for a video."""
    s = cfg.model.sampling
    frames = f"×{s.num_frames}f" if s.num_frames and cfg.model.task in VIDEO_TASKS else ""
    if (s.width is None or s.height is None) and s.resolution in RESOLUTION_PRESETS:
        width, height = RESOLUTION_PRESETS[s.resolution]
        return f"{width}×{height}{frames} ({s.resolution})"
    return f"{s.width}×{s.height}{frames}"


def floor_of(
    cfg: Config, step_ms: Optional[float] = None, device: Optional[torch.device] = None, count_only: bool = False
) -> ConfigFloor:
    """Capture step 0 of `cfg` on `device` (default: `capture.counting_device`), count it, and time the device at
    its shapes unless `count_only` (a step counted on the meta device has shapes only: it is never timed)."""
    if cfg.parallel.num_gpus > 1:
        log.warning(
            "parallel.num_gpus=%d: this is one device's floor for the whole step; N GPUs ideally take floor / N "
            "plus communication",
            cfg.parallel.num_gpus,
        )
    _free_device_memory()  # a run's own pipeline, gone by now: its memory back before this step's is loaded
    step = capture_step(cfg, device)
    counts = count_step(step)
    counted_on = step.device
    del step  # the pipeline: the measurements need the memory, the counts are taken
    _free_device_memory()
    if count_only:
        floor = Floor(counts, None, step_ms)
    else:
        floor = measure_floor(counts, counted_on, cfg.attention.backend, step_ms=step_ms)
    shape = shape_label(cfg)
    context = {
        "model": cfg.model.name,
        "arch": cfg.model.arch,
        "weights": cfg.model.weights,
        "dtype": cfg.model.dtype,
        "shape": shape,
        "counted_on": str(counted_on),
        "torch": torch.__version__,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    title = f"compute floor: {cfg.model.name} ({cfg.model.dtype}, {shape}, counted on {counted_on})"
    return ConfigFloor(floor, title, context)


def _free_device_memory() -> None:
    if torch.cuda.is_available():
        gc.collect()  # pipelines hold reference cycles: their tensors go only with a collection
        torch.cuda.empty_cache()


def add_floor(cfg: Config, result: RunResult, run_dir: Path) -> None:
    """measure.floor=true: the floor of the run's own config, counted and timed on the run's own device, against
    the run's median denoise step; into `result` (metrics, tags, the `floor` artifact), so a tracked run logs it
    and an untracked one keeps it in metrics.json and <run dir>/floor/.

    A floor that cannot be taken (an out-of-memory GPU, a pipeline that makes no transformer call) is named
    in the tag floor.problem: the run keeps its own figures either way.
    """
    step_ms = result.denoise_step_median_ms
    run_ms = run_category_ms(result.metrics())
    try:
        # The run's device, not counting_device: a full-size model run on CPU was built there for real, so its
        # step is timed there too instead of being counted on the meta device.
        of = floor_of(cfg, step_ms, device=resolve_device(cfg))
    except (DiffexpError, torch.OutOfMemoryError) as exc:
        log.warning("no compute floor for this run (its own figures are kept): %s", exc)
        result.tags[names.FLOOR_PROBLEM] = f"{type(exc).__name__}: {exc}"
        return
    assert of.floor.timings is not None  # the run's device is a CUDA device or the CPU: always timed
    out = Path(run_dir) / rundir.FLOOR
    write_floor(of.floor, out, of.title, {**of.context, "run_dir": str(run_dir)}, run_ms)
    result.extra_metrics.update(of.floor.metrics())
    result.tags[names.FLOOR_DEVICE] = of.floor.timings.device
    result.artifacts[rundir.FLOOR] = str(out)
    log.info("%s (%s)", summary_line(of.floor, run_ms), out)
