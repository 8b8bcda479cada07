"""The GELU epilogue (diffexp::linear_gelu_tanh) in diffusers' MLPs: every FeedForward whose activation is
diffusers' GELU(approximate="tanh") over a plain nn.Linear with a bias (FLUX's ff / ff_context, Wan's ffn).
FLUX's single block (proj_mlp, then act_mlp) is handled by its own forward in kernels.patch_flux."""

from __future__ import annotations

import torch
from diffusers.models.activations import GELU
from torch import nn

from kernels._patching import PatchLog, override_forward
from kernels.linear_gelu import linear_gelu_tanh


def takes_epilogue(linear: nn.Module, activation: nn.Module | None = None, approximate: str | None = None) -> bool:
    """A plain nn.Linear with a bias, followed by the tanh GELU (an nn.GELU, or diffusers' `approximate` string)."""
    if approximate is None:
        approximate = activation.approximate if type(activation) is nn.GELU else None
    return type(linear) is nn.Linear and linear.bias is not None and approximate == "tanh"


def _gelu_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    return linear_gelu_tanh(hidden_states, self.proj.weight, self.proj.bias)


def patch_gelu_modules(model: nn.Module, log: PatchLog) -> None:
    for name, module in model.named_modules():
        if type(module) is GELU and takes_epilogue(module.proj, approximate=module.approximate):
            if override_forward(module, _gelu_forward):
                log.add(name, "GELU(tanh).forward -> diffexp::linear_gelu_tanh (cuBLASLt GELU epilogue)")
