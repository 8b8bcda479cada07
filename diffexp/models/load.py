"""Turn a ModelConfig into a ready diffusers pipeline: real checkpoint, tiny model, or random weights."""

from __future__ import annotations

import logging
import threading

import torch

from diffexp.config.schema import ModelConfig
from diffexp.errors import DiffexpError
from diffexp.models.arch import build_pipeline
from diffexp.models.tiny import ensure_tiny_checkpoint

log = logging.getLogger(__name__)

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
# Loading patches process-wide state (accelerate's init_empty_weights swaps nn.Module.register_parameter,
# the builder sets the default dtype): runs sharing a process load one at a time.
_LOAD_LOCK = threading.Lock()


def pipeline_class(model: ModelConfig):
    import diffusers

    name = model.pipeline or "DiffusionPipeline"
    cls = getattr(diffusers, name, None)
    if cls is None:
        raise DiffexpError(f"model.pipeline={name!r}: diffusers {diffusers.__version__} has no such pipeline class")
    return cls


def load_pipeline(model: ModelConfig, device: torch.device):
    with _LOAD_LOCK:
        return _load(model, device)


def _load(model: ModelConfig, device: torch.device):
    dtype = DTYPES[model.dtype]
    if model.weights == "random":
        # Straight onto the device: a full-size DiT would take minutes to initialise on CPU.
        log.info("building %s with random weights from conf/arch/%s.yaml on %s", model.name, model.arch, device)
        return build_pipeline(model.arch, model.sampling.seed or 0, device, dtype, pipeline=model.pipeline)
    path = str(ensure_tiny_checkpoint(model.arch or model.name)) if model.weights == "tiny" else model.path
    log.info("loading %s from %s", model.name, path)
    try:
        pipe = pipeline_class(model).from_pretrained(path, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise DiffexpError(
            f"model.path={path!r}: could not load a {model.pipeline} checkpoint ({exc}). "
            "Without the checkpoint, model.weights=random times the same architecture."
        ) from exc
    return pipe
