"""LayerNorm without affine, then AdaLN modulation, in one pass: y = LN(x) · (1 + scale) + shift.

Call `norm_modulate(x, scale, shift, eps)`; under torch.compile it is the op `torch.ops.diffexp.norm_modulate`.
`norm_modulate_joint(head, tail, scale, shift, eps)` is the same for `torch.cat([head, tail], dim=1)`,
read from the two without the cat (FLUX's single blocks join text and image tokens).
x is [B, S, D]; scale and shift are per sample ([B, D] or [B, 1, D]), per token ([B, S, D]) or shared
([1, D]), in any float dtype (FLUX passes bf16, Wan fp32). Arithmetic is fp32; the output is a new
contiguous tensor in x's dtype. eps defaults to 1e-6, the value FLUX's and Wan's norm1 use. Every input
needs a contiguous last dimension; other strides are free.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from kernels._common import (
    check_out,
    check_same_device,
    eager_or_op,
    interpreting,
    joined_shape,
    kernel_op,
    launcher,
    load_rows,
    load_rows_split,
    modulation_strides,
    row_coords,
    split_rows,
    store_rows,
)


@triton.jit
def modulate_rows(normed, scale_ptr, shift_ptr, batch, pos, stride_cb, stride_cs, stride_tb, stride_ts, cols, mask):
    """normed · (1 + scale) + shift for a tile; scale/shift are [B, S, D] views (stride 0 where they broadcast)."""
    scale = load_rows(scale_ptr, batch, pos, stride_cb, stride_cs, cols, mask)
    shift = load_rows(shift_ptr, batch, pos, stride_tb, stride_ts, cols, mask)
    return normed * (1.0 + scale) + shift


@triton.jit
def _norm_modulate_kernel(
    xh_ptr, x_ptr, scale_ptr, shift_ptr, out_ptr,
    n_rows, seq, split, dim, eps,
    stride_xhb, stride_xhs, stride_xb, stride_xs, stride_cb, stride_cs, stride_tb, stride_ts,
    SPLIT: tl.constexpr, BLOCK_M: tl.constexpr, CHUNK: tl.constexpr, N_CHUNKS: tl.constexpr,
):  # fmt: skip
    """Rows walked in CHUNK-wide pieces: a sum pass, a centred sum-of-squares pass, then normalise + modulate.

    The later passes re-read x from L1 (or keep it in registers), so HBM sees each byte once; unlike a
    power-of-two row tile, no lane is masked off at the DiT widths (3072 = 3·1024, 5120 = 5·1024).
    SPLIT: x is the sequence join of xh (positions < split) and x (see load_rows_split).
    """
    rows, batch, pos, row_mask = row_coords(tl.program_id(0), n_rows, seq, BLOCK_M)
    offsets = tl.arange(0, CHUNK)
    total = tl.zeros([BLOCK_M, CHUNK], tl.float32)
    for c in tl.static_range(N_CHUNKS):
        cols = c * CHUNK + offsets
        mask = row_mask[:, None] & (cols < dim)[None, :]
        total += load_rows_split(
            xh_ptr, x_ptr, split, batch, pos, stride_xhb, stride_xhs, stride_xb, stride_xs, cols, mask, SPLIT
        )
    mean = tl.sum(total, axis=1) / dim
    squares = tl.zeros([BLOCK_M, CHUNK], tl.float32)
    for c in tl.static_range(N_CHUNKS):
        cols = c * CHUNK + offsets
        mask = row_mask[:, None] & (cols < dim)[None, :]
        centered = tl.where(
            mask,
            load_rows_split(
                xh_ptr, x_ptr, split, batch, pos, stride_xhb, stride_xhs, stride_xb, stride_xs, cols, mask, SPLIT
            )
            - mean[:, None],
            0.0,
        )
        squares += centered * centered
    rstd = tl.rsqrt(tl.sum(squares, axis=1) / dim + eps)
    for c in tl.static_range(N_CHUNKS):
        cols = c * CHUNK + offsets
        mask = row_mask[:, None] & (cols < dim)[None, :]
        x = load_rows_split(
            xh_ptr, x_ptr, split, batch, pos, stride_xhb, stride_xhs, stride_xb, stride_xs, cols, mask, SPLIT
        )
        normed = (x - mean[:, None]) * rstd[:, None]
        y = modulate_rows(
            normed, scale_ptr, shift_ptr, batch, pos, stride_cb, stride_cs, stride_tb, stride_ts, cols, mask
        )
        store_rows(out_ptr, rows, dim, cols, y, mask)


def chunked_launch(dim: int, override: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """(BLOCK_M, CHUNK, N_CHUNKS, num_warps) for the chunked row kernel.

    One row per program, 1024-wide chunks, one warp per 512 elements of a chunk (16 per thread at 1024).
    Measured on an H100 (docs/results/h100-2026-11-23-kernels.md): at 1x32760x5120 this runs at 96 % of copy bandwidth where a
    padded 8192-wide tile reached 92 %; at the 3072-wide FLUX shapes it is on par or 1-4 % faster.
    Under the interpreter (which pays per program) rows are packed. `override` = (block_m, num_warps).
    """
    chunk = min(1024, triton.next_power_of_2(dim))
    block_m, num_warps = override if override is not None else (1, max(1, chunk // 512))
    if interpreting():
        block_m = max(1, 8192 // chunk)
    return block_m, chunk, triton.cdiv(dim, chunk), num_warps


def modulation_args(
    scale: torch.Tensor, shift: torch.Tensor, batch: int, seq: int, dim: int
) -> tuple[int, int, int, int]:
    """The (batch, seq) strides of scale, then of shift, broadcast to [B, S, D]."""
    return (*modulation_strides("scale", scale, batch, seq, dim), *modulation_strides("shift", shift, batch, seq, dim))


def launch_norm_modulate(
    x: torch.Tensor,
    scale: torch.Tensor,
    shift: torch.Tensor,
    eps: float,
    out: torch.Tensor,
    launch_override: tuple[int, int] | None = None,
    x_head: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Write norm_modulate(x) into `out` (contiguous, x's shape); the ops below and the tests call this.

    With `x_head`, the input is `torch.cat([x_head, x], dim=1)`, read from the two without the cat.
    """
    rows = split_rows("x", x_head, x)
    batch, seq, dim = rows.batch, rows.seq, rows.dim
    mod_strides = modulation_args(scale, shift, batch, seq, dim)
    check_same_device(x=x, x_head=x_head, scale=scale, shift=shift, out=out)
    check_out("out", out, (batch, seq, dim))
    n_rows = batch * seq
    if n_rows == 0 or dim == 0:
        return out
    block_m, chunk, n_chunks, num_warps = chunked_launch(dim, launch_override)
    launcher(_norm_modulate_kernel)[(triton.cdiv(n_rows, block_m),)](
        rows.head, rows.tail, scale, shift, out,
        n_rows, seq, rows.split, dim, eps,
        *rows.strides(), *mod_strides,
        SPLIT=rows.is_split, BLOCK_M=block_m, CHUNK=chunk, N_CHUNKS=n_chunks, num_warps=num_warps,
    )  # fmt: skip
    return out


def _norm_modulate(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """LayerNorm(x, no affine) · (1 + scale) + shift (Triton); see the module docstring for shapes."""
    return launch_norm_modulate(x, scale, shift, eps, torch.empty(x.shape, dtype=x.dtype, device=x.device))


def _norm_modulate_fake(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x.new_empty(x.shape)


def _norm_modulate_joint(
    head: torch.Tensor, tail: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """norm_modulate(torch.cat([head, tail], dim=1), ...) without the cat (Triton)."""
    return launch_norm_modulate(tail, scale, shift, eps, tail.new_empty(joined_shape(head, tail)), x_head=head)


def _norm_modulate_joint_fake(head, tail, scale, shift, eps=1e-6):
    return tail.new_empty(joined_shape(head, tail))


norm_modulate_op = kernel_op("norm_modulate", _norm_modulate, _norm_modulate_fake)
norm_modulate_joint_op = kernel_op("norm_modulate_joint", _norm_modulate_joint, _norm_modulate_joint_fake)
norm_modulate = eager_or_op(_norm_modulate, norm_modulate_op)
norm_modulate_joint = eager_or_op(_norm_modulate_joint, norm_modulate_joint_op)


def broadcast_reference(t: torch.Tensor) -> torch.Tensor:
    """[B, D] -> [B, 1, D]; 3-D modulation tensors broadcast as they are."""
    return t[:, None, :] if t.dim() == 2 else t


def norm_modulate_reference(
    x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """Plain PyTorch, the same arithmetic: fp32 throughout, one cast at the end."""
    normed = torch.nn.functional.layer_norm(x.float(), (x.shape[-1],), eps=eps)
    y = normed * (1 + broadcast_reference(scale).float()) + broadcast_reference(shift).float()
    return y.to(x.dtype)
