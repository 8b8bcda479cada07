"""Linear + tanh GELU in one cuBLASLt call: diffexp::linear_gelu_tanh (the GEMM's GELU epilogue).

A DiT's MLP up-projection (FLUX: 3072 -> 12288, then GELU(approximate="tanh")) compiled by Inductor is a GEMM
and then a pass that adds the bias and applies GELU over the 12288-wide output. cuBLASLt can apply bias and GELU
in the GEMM's epilogue (`torch._addmm_activation(..., use_gelu=True)`; on CUDA its GELU is the tanh form, as
torch's own decomposition of it says). Measured at FLUX.1-dev's shapes on an H200 that saves 0.06-0.075 ms per
call, about 4.9 ms of a 128 ms step (docs/results/h200-2026-12-02.md). Inductor decomposes
`_addmm_activation` back into addmm + GELU, so it is wrapped in a custom op that Inductor calls but does not see
into. Not a Triton kernel: the epilogue is cuBLASLt's.

On CPU `_addmm_activation` computes the exact GELU, so there the op runs its reference (the stock arithmetic).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def linear_gelu_tanh_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """What the stock modules compute: nn.Linear, then nn.GELU(approximate="tanh")."""
    return F.gelu(F.linear(x, weight, bias), approximate="tanh")


@torch.library.custom_op("diffexp::linear_gelu_tanh", mutates_args=())
def linear_gelu_tanh(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """gelu_tanh(x @ weight.T + bias) over the last dimension of x (any leading shape)."""
    if not x.is_cuda:
        return linear_gelu_tanh_reference(x, weight, bias)
    rows = x.reshape(-1, x.shape[-1])
    out = torch._addmm_activation(bias, rows, weight.t(), use_gelu=True)
    return out.view(*x.shape[:-1], weight.shape[0])


@linear_gelu_tanh.register_fake
def _linear_gelu_tanh_fake(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return x.new_empty((*x.shape[:-1], weight.shape[0]))
