"""The floor of a composed run: what `python -m diffexp.floor` computes for a config."""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

import torch

from diffexp.config.schema import Config
from diffexp.config.validate import VIDEO_TASKS
from diffexp.floor.capture import capture_step, count_step
from diffexp.floor.floor import Floor, measure_floor

log = logging.getLogger(__name__)


@dataclass
class ConfigFloor:
    """One denoise step's floor for a config, with the title of its tables and what it describes."""

    floor: Floor
    title: str
    # floor.json's description of the run: model, shape, where it was counted, versions, date.
    context: dict[str, Any]


def shape_label(cfg: Config) -> str:
    s = cfg.model.sampling
    frames = f"×{s.num_frames}f" if s.num_frames and cfg.model.task in VIDEO_TASKS else ""
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
