"""The exact transformer calls of one denoise step: build the configured pipeline, run it until the first
scheduler step, and keep the args / kwargs each denoiser call received (a CFG pipeline calls it twice).

Where it is built: on CUDA the engine's own loader (`load_pipeline`: tiny, random full-size architectures
straight on the GPU in the run's dtype, or the checkpoint); without CUDA the tiny models on CPU, and any
other model from its architecture file on the meta device (shapes only, no memory, no compute).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from diffexp.config.schema import Config
from diffexp.engines.diffusers.call import DEFAULT_SEED, call_kwargs
from diffexp.engines.diffusers.device import resolve_device
from diffexp.engines.pipeline_setup import denoisers
from diffexp.errors import DiffexpError
from diffexp.floor.count import ForwardCounts, count_forward
from diffexp.models import load_pipeline
from diffexp.models.arch import arch_path, build_pipeline
from diffexp.models.load import DTYPES

log = logging.getLogger(__name__)


@dataclass
class TransformerCall:
    """One denoiser call as the pipeline made it."""

    component: str
    args: tuple
    kwargs: dict[str, Any]


@dataclass
class StepCalls:
    pipe: Any
    device: torch.device
    dtype: torch.dtype
    calls: list[TransformerCall] = field(default_factory=list)

    def module(self, call: TransformerCall) -> torch.nn.Module:
        return getattr(self.pipe, call.component)


class _StepReached(Exception):
    """Raised from the scheduler's step: every transformer call of the first step has been made."""


def counting_device(cfg: Config) -> torch.device:
    """CUDA where the run would use it; else CPU for the tiny models and the meta device for the rest."""
    device = resolve_device(cfg)
    if device.type == "cuda" or cfg.model.weights == "tiny":
        return device
    return torch.device("meta")


def build(cfg: Config, device: torch.device):
    dtype = DTYPES[cfg.model.dtype]
    if device.type != "meta":
        # Checkpoints (the tiny ones too) load on CPU; the engine places them, here all on the device.
        return load_pipeline(cfg.model, device).to(device)
    if not cfg.model.arch or not arch_path(cfg.model.arch).is_file():
        raise DiffexpError(
            f"model={cfg.model.name}: counting without a GPU builds the architecture on the meta device, and "
            f"model.arch={cfg.model.arch!r} names no file in conf/arch/; add one, or run this on a GPU"
        )
    log.info("building %s from conf/arch/%s.yaml on the meta device (shapes only)", cfg.model.name, cfg.model.arch)
    return build_pipeline(cfg.model.arch, cfg.model.sampling.seed or 0, device, dtype, pipeline=cfg.model.pipeline)


def capture_step(cfg: Config, device: torch.device | None = None) -> StepCalls:
    """Build the run's pipeline on `device` (default: `counting_device`) and record step 0's denoiser calls."""
    device = device or counting_device(cfg)
    pipe = build(cfg, device)
    pipe.set_progress_bar_config(disable=True)
    step = StepCalls(pipe, device, DTYPES[cfg.model.dtype])
    handles = []
    for name in denoisers(pipe):

        def keep(_module, args, kwargs, name=name):
            step.calls.append(TransformerCall(name, args, dict(kwargs)))

        handles.append(getattr(pipe, name).register_forward_pre_hook(keep, with_kwargs=True))

    def stop(*_args, **_kwargs):
        raise _StepReached

    # An instance attribute hides the scheduler's own step for this call only.
    pipe.scheduler.step = stop
    seed = cfg.model.sampling.seed if cfg.model.sampling.seed is not None else DEFAULT_SEED
    try:
        pipe(**call_kwargs(cfg, pipe), generator=torch.Generator("cpu").manual_seed(seed))
    except _StepReached:
        pass
    except RuntimeError as exc:
        if device.type != "meta" or "meta tensors" not in str(exc):
            raise
        # Qwen-Image and Z-Image keep the text encoder's output where the attention mask is set: a length that
        # depends on values, which shapes alone do not have.
        raise DiffexpError(
            f"{type(pipe).__name__} cannot be counted on the meta device (its prompt encoding depends on values: "
            f"{exc}); count it on a GPU, where the architecture is built with random weights"
        ) from exc
    finally:
        del pipe.scheduler.step
        for handle in handles:
            handle.remove()
    if not step.calls:
        raise DiffexpError(f"{type(pipe).__name__} made no denoiser call before its first scheduler step")
    log.info("captured %d denoiser call(s) of one step on %s", len(step.calls), device)
    return step


def count_step(step: StepCalls) -> ForwardCounts:
    """The work of every captured call of the step, added up."""
    total = ForwardCounts()
    for call in step.calls:
        total = total + count_forward(step.module(call), call.args, call.kwargs)
    return total
