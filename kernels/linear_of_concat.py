"""linear(torch.cat(parts, dim=-1)) without writing the concatenation.

FLUX's single block projects torch.cat([attention output, MLP output], dim=2) (3072 + 12288 = 15360 wide) with
proj_out. Stock, Inductor writes the GELU straight into the concatenated buffer, so the cat is free; once the
GELU is the GEMM's epilogue (kernels/linear_gelu.py, an opaque call) it becomes a copy of 4608 x 15360 bf16 in and
out of memory, 2.44 ms of a FLUX.1-dev-size step on an H200 (docs/results/h200-2026-12-02b.md). A linear of a
concatenation is the sum of one GEMM per part over that part's columns of the weight: the first adds the bias,
each later one accumulates onto it in place in its own epilogue (cuBLAS's beta = 1, Tensor.addmm_), and nothing
is copied. It is a custom op so that Inductor calls it as it is (its own lowering would give the accumulating
GEMM a fresh output and copy the partial sum into it, 28 MB a block at FLUX's shapes).
The partial sums round to the output dtype between GEMMs: in bf16 one more rounding of the output, within the
tolerance the rest of the patch keeps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.library.custom_op("diffexp::linear_of_concat", mutates_args=())
def linear_of_concat_op(parts: list[torch.Tensor], weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`F.linear(torch.cat(parts, dim=-1), weight, bias)`, one GEMM per part, each later one accumulated in place
    onto the first's output (an opaque op: Inductor would give addmm a fresh output and copy the sum into it)."""
    rows = [p.reshape(-1, p.shape[-1]) for p in parts]
    start = parts[0].shape[-1]
    out = F.linear(rows[0], weight[:, :start], bias)
    for part in rows[1:]:
        out.addmm_(part, weight[:, start : start + part.shape[-1]].t())
        start += part.shape[-1]
    return out.view(*parts[0].shape[:-1], weight.shape[0])


@linear_of_concat_op.register_fake
def _linear_of_concat_fake(parts: list[torch.Tensor], weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return parts[0].new_empty((*parts[0].shape[:-1], weight.shape[0]))


def linear_of_concat(parts: list[torch.Tensor], linear: torch.nn.Linear) -> torch.Tensor:
    """`linear(torch.cat(parts, dim=-1))` without the cat; every part has the same leading shape."""
    widths = [p.shape[-1] for p in parts]
    if sum(widths) != linear.in_features:
        raise ValueError(f"parts {widths} sum to {sum(widths)}, the linear takes {linear.in_features} features")
    return linear_of_concat_op(parts, linear.weight, linear.bias)
