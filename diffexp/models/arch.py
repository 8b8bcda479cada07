"""Build a pipeline's components from an architecture file in conf/arch/ with seeded random weights.

The same builder makes the built-in tiny models (saved once, then loaded like a checkpoint) and
full-size architectures (built straight on the GPU in the run's dtype, since latency does not
depend on weight values).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from diffexp.config.store import CONF_DIR
from diffexp.errors import DiffexpError
from diffexp.models.tokenizer import BOS_ID, EOS_ID, PAD_ID, byte_level_tokenizer

log = logging.getLogger(__name__)


def load_arch(name: str) -> dict[str, Any]:
    path = CONF_DIR / "arch" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (CONF_DIR / "arch").glob("*.yaml"))
        raise DiffexpError(f"model.arch={name!r}: no file {path}; known architectures: {', '.join(known)}")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # type: ignore[return-value]


def _import(dotted: str):
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _build_model(spec: dict[str, Any]) -> torch.nn.Module:
    cls = _import(spec["class"])
    config = dict(spec.get("config", {}))
    if "config_class" in spec:
        # Special-token ids must agree with the locally built tokenizer (CLIP pools at the EOS token).
        config.setdefault("pad_token_id", PAD_ID)
        config.setdefault("eos_token_id", EOS_ID)
        config.setdefault("bos_token_id", BOS_ID)
        config.setdefault("vocab_size", 384)
        return cls(_import(spec["config_class"])(**config))
    return cls(**config)


def build_components(
    arch: dict[str, Any], seed: int, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> dict[str, Any]:
    """Instantiate every component; modules are created directly on `device` in `dtype`."""
    components: dict[str, Any] = {}
    previous_dtype = torch.get_default_dtype()
    torch.manual_seed(seed)
    try:
        torch.set_default_dtype(dtype)
        with torch.device(device):
            for name, spec in arch["components"].items():
                if "tokenizer" in spec:
                    components[name] = byte_level_tokenizer(spec["model_max_length"], spec.get("template", "t5"))
                elif spec["class"].endswith("Scheduler"):
                    components[name] = _import(spec["class"])(**spec.get("config", {}))
                else:
                    model = _build_model(spec).eval().requires_grad_(False)
                    components[name] = model
                    log.debug("built %s: %.1fM parameters", name, sum(p.numel() for p in model.parameters()) / 1e6)
    finally:
        torch.set_default_dtype(previous_dtype)
    return components


def build_pipeline(arch_name: str, seed: int, device: str | torch.device, dtype: torch.dtype):
    arch = load_arch(arch_name)
    pipeline_cls = _import(f"diffusers.{arch['pipeline']}")
    return pipeline_cls(**build_components(arch, seed, device, dtype))


def arch_path(name: str) -> Path:
    return CONF_DIR / "arch" / f"{name}.yaml"
