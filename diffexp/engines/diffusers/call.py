"""The pipeline-call arguments from the sampling config."""

from __future__ import annotations

import logging

from diffexp.config.schema import RESOLUTION_PRESETS, Config
from diffexp.config.validate import IMAGE_TASKS
from diffexp.errors import DiffexpError

log = logging.getLogger(__name__)

VIDEO_TASKS = ("t2v", "ti2v", "i2v")
DEFAULT_SEED = 42


def seed_of(cfg: Config) -> int:
    return cfg.model.sampling.seed if cfg.model.sampling.seed is not None else DEFAULT_SEED


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
    if "image" in dropped and cfg.model.task in IMAGE_TASKS:
        # Dropping the input would time another task (text-to-video for a TI2V recipe) under this one's name.
        raise DiffexpError(
            f"model.task={cfg.model.task!r} conditions on model.sampling.image_path, but {type(pipe).__name__} "
            f"takes no image: set model.pipeline to the task's pipeline (model.pipeline={cfg.model.pipeline!r})"
        )
    if dropped:
        log.warning("%s does not take %s; not passed", type(pipe).__name__, ", ".join(dropped))
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    kwargs["output_type"] = "np" if cfg.model.task in VIDEO_TASKS else "pil"
    return kwargs
