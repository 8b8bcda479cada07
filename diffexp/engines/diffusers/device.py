"""Which torch device a config names."""

from __future__ import annotations

import torch

from diffexp.config.schema import Config


def resolve_device(cfg: Config) -> torch.device:
    if cfg.engine.device == "cpu" or (cfg.engine.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    # engine.gpus (e.g. a GPU lease from a parallel sweep) names the device as CUDA_VISIBLE_DEVICES does;
    # else the first visible one.
    from diffexp.gpus import torch_index

    device = torch.device("cuda", torch_index(cfg.engine.gpus.split(",")[0]) if cfg.engine.gpus else 0)
    if cfg.engine.vram_cap_gib is not None:
        cap_vram(device, cfg.engine.vram_cap_gib)
    return device


def cap_vram(device: torch.device, cap_gib: float) -> None:
    """Beyond cap_gib the allocator raises OutOfMemoryError: a VRAM budget is measured, not estimated."""
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap_gib * 2**30 / total), device)
