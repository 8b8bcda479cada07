"""RMSNorm with an optional weight: y = x / sqrt(mean(x²) + eps) · w, fp32 inside, output in x's dtype.

Call `rms_norm(x, weight, eps)`; under torch.compile it is the op `torch.ops.diffexp.rms_norm`.
x is [..., D] with a contiguous last dimension; 2-D and 3-D inputs are read in place whatever their leading
strides, higher ranks are flattened to 3-D with `reshape` (a copy only when their strides do not allow a
view). The output is a new contiguous tensor.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from kernels._common import (
    KernelInputError,
    check_out,
    check_same_device,
    check_tensor,
    eager_or_op,
    kernel_op,
    launcher,
    load_rows,
    rms_norm_fp32,
    row_coords,
    row_launch,
    store_rows,
)


@triton.jit
def _rms_norm_kernel(
    x_ptr, w_ptr, out_ptr,
    n_rows, seq, dim, stride_xb, stride_xs, eps,
    HAS_WEIGHT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    rows, batch, pos, row_mask = row_coords(tl.program_id(0), n_rows, seq, BLOCK_M)
    cols = tl.arange(0, BLOCK_D)
    col_mask = cols < dim
    mask = row_mask[:, None] & col_mask[None, :]
    x = load_rows(x_ptr, batch, pos, stride_xb, stride_xs, cols, mask)
    y = rms_norm_fp32(x, dim, eps)
    if HAS_WEIGHT:
        y = y * tl.load(w_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)[None, :]
    store_rows(out_ptr, rows, dim, cols, y, mask)


def _as_rows(x: torch.Tensor) -> torch.Tensor:
    """x as [B, S, D]: 2-D and 3-D as views, higher ranks through reshape."""
    if x.dim() == 2:
        return x[None]
    if x.dim() == 3:
        return x
    return x.reshape(-1, x.shape[-2], x.shape[-1])


def launch_rms_norm(
    x: torch.Tensor,
    weight: Optional[torch.Tensor],
    eps: float,
    out: torch.Tensor,
    launch_override: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Write rms_norm(x) into `out` (contiguous, x's shape); the op below and the tests call this."""
    check_tensor("x", x, ndim=tuple(range(2, 9)))
    dim = x.shape[-1]
    if weight is not None:
        check_tensor("weight", weight, ndim=(1,))
        if weight.shape[0] != dim:
            raise KernelInputError(f"weight: expected shape [{dim}] to match x's last dim, got {tuple(weight.shape)}")
    check_same_device(x=x, weight=weight, out=out)
    check_out("out", out, x.shape)
    rows = _as_rows(x)
    n_rows = rows.shape[0] * rows.shape[1]
    if n_rows == 0 or dim == 0:
        return out
    cfg = row_launch(dim, launch_override)
    launcher(_rms_norm_kernel)[(triton.cdiv(n_rows, cfg.block_m),)](
        rows, weight if weight is not None else rows, out,
        n_rows, rows.shape[1], dim, rows.stride(0), rows.stride(1), eps,
        HAS_WEIGHT=weight is not None, BLOCK_M=cfg.block_m, BLOCK_D=cfg.block_d, num_warps=cfg.num_warps,
    )  # fmt: skip
    return out


def _rms_norm(x: torch.Tensor, weight: Optional[torch.Tensor], eps: float = 1e-6) -> torch.Tensor:
    """RMSNorm over the last dimension (Triton) into a new tensor; see the module docstring for shapes."""
    return launch_rms_norm(x, weight, eps, torch.empty(x.shape, dtype=x.dtype, device=x.device))


def _rms_norm_fake(x: torch.Tensor, weight: Optional[torch.Tensor], eps: float = 1e-6) -> torch.Tensor:
    return x.new_empty(x.shape)


rms_norm_op = kernel_op("rms_norm", _rms_norm, _rms_norm_fake)


rms_norm = eager_or_op(_rms_norm, rms_norm_op)


def rms_norm_reference(x: torch.Tensor, weight: Optional[torch.Tensor], eps: float = 1e-6) -> torch.Tensor:
    """Plain PyTorch, the same arithmetic: fp32 throughout, one cast at the end."""
    xf = x.float()
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    if weight is not None:
        y = y * weight.float()
    return y.to(x.dtype)
