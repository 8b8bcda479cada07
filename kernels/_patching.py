"""Helpers for swapping kernels into diffusers modules: forward overrides, the patch log, the eps rule."""

from __future__ import annotations

import re
import types
from collections import Counter
from collections.abc import Callable

import torch
from torch import nn

from diffexp.errors import DiffexpError

# Set on every module whose forward we replaced, so that a second apply_triton_kernels is a no-op.
PATCHED_MARK = "_diffexp_triton_patched"


class PatchLog:
    """What was patched, grouped so that 57 identical blocks log as one line with a count."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def add(self, module_name: str, what: str) -> None:
        pattern = re.sub(r"\.\d+(?=\.|$)", ".*", module_name) or "<root>"
        self._counts[f"{pattern}: {what}"] += 1

    def lines(self) -> list[str]:
        return [f"{entry} (x{count})" for entry, count in self._counts.items()]


def override_forward(module: nn.Module, forward: Callable) -> bool:
    """Replace `module.forward` on this instance only (class, parameters and state-dict keys unchanged).

    Returns False when it was already patched. Refuses a module whose forward someone else already
    replaced (diffusers/accelerate hooks for offloading or caching do that), since we would drop it.
    """
    if getattr(module, PATCHED_MARK, False):
        return False
    if "forward" in module.__dict__:
        raise DiffexpError(
            f"{type(module).__name__} already has a replaced forward (a hook: offloading, caching, ...); "
            "call apply_triton_kernels(transformer) before enabling hooks on it"
        )
    module.forward = types.MethodType(forward, module)
    setattr(module, PATCHED_MARK, True)
    return True


def swap_processor(name: str, attn: nn.Module, processor, log: PatchLog, what: str) -> None:
    """Install `processor` on `attn`, keeping the attention backend and context-parallel config of the old one."""
    processor._attention_backend = attn.processor._attention_backend
    processor._parallel_config = attn.processor._parallel_config
    attn.set_processor(processor)
    log.add(f"{name}.processor", what)


def rms_eps(norm: nn.Module, dtype: torch.dtype) -> float:
    """torch.nn.RMSNorm's eps; its None means the input dtype's machine epsilon."""
    eps = getattr(norm, "eps", None)
    return float(torch.finfo(dtype).eps) if eps is None else float(eps)


def is_plain_layer_norm(norm: nn.Module) -> bool:
    """A LayerNorm over the last dim without affine parameters: what norm_modulate computes."""
    return (
        isinstance(norm, nn.LayerNorm) and len(norm.normalized_shape) == 1 and norm.weight is None and norm.bias is None
    )


def is_affine_layer_norm(norm: nn.Module) -> bool:
    return isinstance(norm, nn.LayerNorm) and len(norm.normalized_shape) == 1 and norm.weight is not None


def is_rms_norm(norm: nn.Module) -> bool:
    return isinstance(norm, nn.RMSNorm) and len(norm.normalized_shape) == 1
