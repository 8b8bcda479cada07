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

    return torch.device("cuda", torch_index(cfg.engine.gpus.split(",")[0]) if cfg.engine.gpus else 0)
