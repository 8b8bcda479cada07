"""The gated residual add of adaLN-Zero blocks, alone and fused with the next norm + modulation.

Entry points (each the op `torch.ops.diffexp.<name>` under torch.compile, a direct launch in eager mode):
- `gated_residual(residual, y, gate)` -> residual + gate · y
- `gated_residual_joint(residual_head, residual, y, gate)` -> torch.cat([residual_head, residual], dim=1) + gate · y,
  read from the two without the cat (FLUX's single blocks join text and image tokens)
- `gated_residual_norm_modulate(residual, y, gate, scale, shift, eps)`
  -> (new_residual, LN(new_residual) · (1 + scale) + shift); gate may be None (a plain residual add).

residual and y are [B, S, D]; gate, scale and shift are per sample ([B, D] / [B, 1, D]), per token
([B, S, D]) or shared ([1, D]), in any float dtype. Arithmetic is fp32; outputs are new contiguous tensors
in residual's dtype. The fused op normalises the residual *after* rounding it to that dtype, exactly as the
unfused code (which stores the residual, then reads it back) does.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from kernels._common import (
    KernelInputError,
    SplitRows,
    check_out,
    check_same_device,
    check_tensor,
    eager_or_op,
    interpreting,
    kernel_op,
    launcher,
    layer_norm_fp32,
    load_rows,
    load_rows_split,
    modulation_strides,
    row_coords,
    row_launch,
    split_rows,
    store_rows,
)
from kernels.norm_modulate import broadcast_reference, modulate_rows, modulation_args, norm_modulate_reference


@triton.jit
def _gated_residual_kernel(
    rh_ptr, res_ptr, y_ptr, gate_ptr, out_ptr,
    n_rows, seq, split, dim,
    stride_rhb, stride_rhs, stride_rb, stride_rs, stride_yb, stride_ys, stride_gb, stride_gs,
    SPLIT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """SPLIT: the residual is the sequence join of rh (positions < split) and res (see load_rows_split)."""
    rows, batch, pos, row_mask = row_coords(tl.program_id(0), n_rows, seq, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask = row_mask[:, None] & (cols < dim)[None, :]
    res = load_rows_split(
        rh_ptr, res_ptr, split, batch, pos, stride_rhb, stride_rhs, stride_rb, stride_rs, cols, mask, SPLIT
    )
    y = load_rows(y_ptr, batch, pos, stride_yb, stride_ys, cols, mask)
    gate = load_rows(gate_ptr, batch, pos, stride_gb, stride_gs, cols, mask)
    store_rows(out_ptr, rows, dim, cols, res + gate * y, mask)


@triton.jit
def _gated_residual_norm_modulate_kernel(
    res_ptr, y_ptr, gate_ptr, scale_ptr, shift_ptr, res_out_ptr, mod_out_ptr,
    n_rows, seq, dim, eps,
    stride_rb, stride_rs, stride_yb, stride_ys, stride_gb, stride_gs,
    stride_cb, stride_cs, stride_tb, stride_ts,
    HAS_GATE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    rows, batch, pos, row_mask = row_coords(tl.program_id(0), n_rows, seq, BLOCK_M)
    cols = tl.arange(0, BLOCK_D)
    mask = row_mask[:, None] & (cols < dim)[None, :]
    res = load_rows(res_ptr, batch, pos, stride_rb, stride_rs, cols, mask)
    y = load_rows(y_ptr, batch, pos, stride_yb, stride_ys, cols, mask)
    if HAS_GATE:
        y = y * load_rows(gate_ptr, batch, pos, stride_gb, stride_gs, cols, mask)
    new_res = (res + y).to(res_out_ptr.dtype.element_ty)
    store_rows(res_out_ptr, rows, dim, cols, new_res, mask)
    normed = layer_norm_fp32(new_res.to(tl.float32), mask, dim, eps)
    out = modulate_rows(
        normed, scale_ptr, shift_ptr, batch, pos, stride_cb, stride_cs, stride_tb, stride_ts, cols, mask
    )
    store_rows(mod_out_ptr, rows, dim, cols, out, mask)


def _check_pair(residual: torch.Tensor, y: torch.Tensor, residual_head: Optional[torch.Tensor] = None) -> SplitRows:
    rows = split_rows("residual", residual_head, residual)
    check_tensor("y", y, ndim=(3,))
    if y.shape != (rows.batch, rows.seq, rows.dim):
        raise KernelInputError(
            f"y: shape {tuple(y.shape)} differs from the residual's {(rows.batch, rows.seq, rows.dim)}"
        )
    return rows


def _elementwise_launch(dim: int, override: tuple[int, int] | None) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_D, num_warps): column blocks of 1024 divide the DiT widths (3072, 5120) exactly."""
    block_d = min(triton.next_power_of_2(dim), 1024)
    block_m, num_warps = override if override is not None else (max(1, 4096 // block_d), 8)
    return (max(1, 8192 // block_d) if interpreting() else block_m), block_d, num_warps


def launch_gated_residual(
    residual: torch.Tensor,
    y: torch.Tensor,
    gate: torch.Tensor,
    out: torch.Tensor,
    launch_override: tuple[int, int] | None = None,
    residual_head: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Write residual + gate · y into `out` (contiguous, y's shape).

    With `residual_head`, the residual is `torch.cat([residual_head, residual], dim=1)`, read without the cat.
    """
    rows = _check_pair(residual, y, residual_head)
    batch, seq, dim = rows.batch, rows.seq, rows.dim
    gate_strides = modulation_strides("gate", gate, batch, seq, dim)
    check_same_device(residual=residual, residual_head=residual_head, y=y, gate=gate, out=out)
    check_out("out", out, (batch, seq, dim))
    n_rows = batch * seq
    if n_rows == 0 or dim == 0:
        return out
    block_m, block_d, num_warps = _elementwise_launch(dim, launch_override)
    launcher(_gated_residual_kernel)[(triton.cdiv(n_rows, block_m), triton.cdiv(dim, block_d))](
        rows.head, rows.tail, y, gate, out,
        n_rows, seq, rows.split, dim,
        *rows.strides(), y.stride(0), y.stride(1), *gate_strides,
        SPLIT=rows.is_split, BLOCK_M=block_m, BLOCK_D=block_d, num_warps=num_warps,
    )  # fmt: skip
    return out


def launch_gated_residual_norm_modulate(
    residual: torch.Tensor,
    y: torch.Tensor,
    gate: Optional[torch.Tensor],
    scale: torch.Tensor,
    shift: torch.Tensor,
    eps: float,
    res_out: torch.Tensor,
    mod_out: torch.Tensor,
    launch_override: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Write the new residual into `res_out` and its modulated LayerNorm into `mod_out`."""
    _check_pair(residual, y)
    batch, seq, dim = residual.shape
    mod_strides = modulation_args(scale, shift, batch, seq, dim)
    gate_strides = modulation_strides("gate", gate, batch, seq, dim) if gate is not None else (0, 0)
    check_same_device(residual=residual, y=y, gate=gate, scale=scale, shift=shift, res_out=res_out, mod_out=mod_out)
    check_out("res_out", res_out, residual.shape)
    check_out("mod_out", mod_out, residual.shape)
    n_rows = batch * seq
    if n_rows == 0 or dim == 0:
        return res_out, mod_out
    cfg = row_launch(dim, launch_override)
    launcher(_gated_residual_norm_modulate_kernel)[(triton.cdiv(n_rows, cfg.block_m),)](
        residual, y, gate if gate is not None else residual, scale, shift, res_out, mod_out,
        n_rows, seq, dim, eps,
        residual.stride(0), residual.stride(1), y.stride(0), y.stride(1), *gate_strides, *mod_strides,
        HAS_GATE=gate is not None, BLOCK_M=cfg.block_m, BLOCK_D=cfg.block_d, num_warps=cfg.num_warps,
    )  # fmt: skip
    return res_out, mod_out


def _new_like(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(t.shape, dtype=t.dtype, device=t.device)


def _gated_residual(residual: torch.Tensor, y: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """residual + gate · y (Triton) into a new tensor; see the module docstring for shapes."""
    return launch_gated_residual(residual, y, gate, _new_like(residual))


def _gated_residual_fake(residual: torch.Tensor, y: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    return residual.new_empty(residual.shape)


gated_residual_op = kernel_op("gated_residual", _gated_residual, _gated_residual_fake)


def _gated_residual_norm_modulate(
    residual: torch.Tensor,
    y: torch.Tensor,
    gate: Optional[torch.Tensor],
    scale: torch.Tensor,
    shift: torch.Tensor,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(residual + gate · y, LN(that) · (1 + scale) + shift) (Triton); see the module docstring."""
    return launch_gated_residual_norm_modulate(
        residual, y, gate, scale, shift, eps, _new_like(residual), _new_like(residual)
    )


def _gated_residual_norm_modulate_fake(residual, y, gate, scale, shift, eps=1e-6):
    return residual.new_empty(residual.shape), residual.new_empty(residual.shape)


gated_residual_norm_modulate_op = kernel_op(
    "gated_residual_norm_modulate", _gated_residual_norm_modulate, _gated_residual_norm_modulate_fake
)


def _gated_residual_joint(
    residual_head: torch.Tensor, residual: torch.Tensor, y: torch.Tensor, gate: torch.Tensor
) -> torch.Tensor:
    """torch.cat([residual_head, residual], dim=1) + gate · y without the cat (Triton), into a new tensor."""
    out = torch.empty(y.shape, dtype=residual.dtype, device=residual.device)
    return launch_gated_residual(residual, y, gate, out, residual_head=residual_head)


def _gated_residual_joint_fake(residual_head, residual, y, gate):
    return y.new_empty(y.shape, dtype=residual.dtype)


gated_residual_joint_op = kernel_op("gated_residual_joint", _gated_residual_joint, _gated_residual_joint_fake)


gated_residual = eager_or_op(_gated_residual, gated_residual_op)
gated_residual_joint = eager_or_op(_gated_residual_joint, gated_residual_joint_op)
gated_residual_norm_modulate = eager_or_op(_gated_residual_norm_modulate, gated_residual_norm_modulate_op)


def gated_residual_reference(residual: torch.Tensor, y: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """Plain PyTorch, the same arithmetic: fp32 throughout, one cast at the end."""
    return (residual.float() + broadcast_reference(gate).float() * y.float()).to(residual.dtype)


def gated_residual_norm_modulate_reference(
    residual: torch.Tensor,
    y: torch.Tensor,
    gate: Optional[torch.Tensor],
    scale: torch.Tensor,
    shift: torch.Tensor,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain PyTorch, the same arithmetic as the fused kernel."""
    gated = y.float() if gate is None else broadcast_reference(gate).float() * y.float()
    new_residual = (residual.float() + gated).to(residual.dtype)
    return new_residual, norm_modulate_reference(new_residual, scale, shift, eps)
