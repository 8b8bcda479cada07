"""Which torch device a config names."""

from __future__ import annotations

from typing import Optional

import torch

from diffexp.config.schema import Config


def resolve_device(cfg: Config) -> torch.device:
    if cfg.engine.device == "cpu" or (cfg.engine.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    # engine.gpus (e.g. a GPU lease from a parallel sweep) names the device as CUDA_VISIBLE_DEVICES does;
    # else the first visible one.
    from diffexp.gpus import torch_index

    return torch.device("cuda", torch_index(cfg.engine.gpus.split(",")[0]) if cfg.engine.gpus else 0)


def cap_vram(device: torch.device, cap_gib: Optional[float]) -> None:
    """engine.vram_cap_gib: beyond it the allocator raises OutOfMemoryError, so a VRAM budget is measured, not
    estimated. Applied once the pipeline is placed: random weights are built straight on the GPU and then offloaded,
    a build peak a checkpoint's load (host first, then each component where it is placed) does not have."""
    if cap_gib is None or device.type != "cuda":
        return
    torch.cuda.empty_cache()  # what the offload freed goes back, so the cap sees the placed pipeline
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap_gib * 2**30 / total), device)
