"""What every kernel module shares: input checks, launch sizing, and the Triton helpers for row norms."""

from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from diffexp.errors import DiffexpError

# Dtypes every kernel takes; arithmetic is always fp32 inside the kernels.
SUPPORTED_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


class KernelInputError(DiffexpError, ValueError):
    """A tensor handed to a kernel has a shape, dtype, layout or device the kernel does not take."""


def interpreting() -> bool:
    """True when Triton runs kernels through its CPU interpreter.

    Triton reads TRITON_INTERPRET=1 when a kernel is decorated, i.e. when kernels/ is first imported; setting
    it later makes this say True while the kernels stay compiled ones.
    """
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def check_tensor(
    name: str,
    t: torch.Tensor,
    *,
    ndim: tuple[int, ...] | None = None,
    dtypes: tuple[torch.dtype, ...] = SUPPORTED_DTYPES,
) -> None:
    """Reject what the kernels cannot read; the message says how to fix it.

    Layout rule for every kernel: the last dimension must be contiguous (stride 1). Leading dimensions may
    have any strides (views from `chunk`, slices, fused QKV projections are read in place, without a copy).
    """
    if ndim is not None and t.dim() not in ndim:
        raise KernelInputError(f"{name}: expected {' or '.join(map(str, ndim))} dimensions, got shape {tuple(t.shape)}")
    if t.dtype not in dtypes:
        raise KernelInputError(f"{name}: dtype {t.dtype} is not supported; use one of {dtypes}")
    if t.device.type != "cuda" and not interpreting():
        raise KernelInputError(
            f"{name}: the Triton kernels need CUDA tensors (got {t.device}); on CPU, set TRITON_INTERPRET=1 "
            "before triton is imported to run them through the interpreter (slow, for tests only)"
        )
    if t.numel() > 0 and t.stride(-1) != 1:
        raise KernelInputError(
            f"{name}: the last dimension must be contiguous (stride 1), got strides {t.stride()}; "
            "call .contiguous() first"
        )


def check_out(name: str, out: torch.Tensor, shape: tuple[int, ...]) -> None:
    """An output the kernels write row by row: contiguous, of the given shape."""
    if not out.is_contiguous() or tuple(out.shape) != tuple(shape):
        raise KernelInputError(f"{name}: expected a contiguous tensor of shape {tuple(shape)}")


def joined_shape(head: torch.Tensor, tail: torch.Tensor) -> tuple[int, ...]:
    """The shape of torch.cat([head, tail], dim=1)."""
    return (tail.shape[0], head.shape[1] + tail.shape[1], *tail.shape[2:])


def check_same_device(**tensors: torch.Tensor | None) -> None:
    present = [t for t in tensors.values() if t is not None]
    if any(t.device != present[0].device for t in present):
        devices = {name: str(t.device) for name, t in tensors.items() if t is not None}
        raise KernelInputError(f"all tensors must be on one device, got {devices}")


# Set while a launch function runs as the body of a registered op (traced by torch.compile, or called
# through the dispatcher). Eager calls (eager_or_op) launch the kernel directly, without wrap_triton's
# higher-order-op dispatch.
_IN_OP = threading.local()


def launcher(kernel):
    """`kernel` itself, or `wrap_triton(kernel)` inside an op body, so that torch.compile traces the launch."""
    return wrap_triton(kernel) if getattr(_IN_OP, "active", False) else kernel


def _as_op_body(impl: Callable) -> Callable:
    @functools.wraps(impl)
    def body(*args, **kwargs):
        outer = getattr(_IN_OP, "active", False)
        _IN_OP.active = True
        try:
            return impl(*args, **kwargs)
        finally:
            _IN_OP.active = outer

    # Resolved annotations: the op schema is inferred from them, and strings would be evaluated elsewhere.
    body.__signature__ = inspect.signature(impl, eval_str=True)
    return body


def kernel_op(name: str, impl: Callable, fake: Callable, mutates_args: tuple[str, ...] = ()):
    """Register `impl` (a function with type annotations that launches kernels through `launcher`) as
    `torch.ops.diffexp.<name>`.

    Normally a `torch.library.triton_op`: torch.compile traces through `impl` down to the Triton launch, and
    Inductor launches the kernel from its own generated code. As a plain custom op, each call in a compiled
    graph went back through the dispatcher into Python: about 80 µs of host time per call measured on the
    H100's host (a raw Triton launch is 18 µs), 267 calls per FLUX.1-dev-size forward, enough to leave the
    GPU idle (docs/results/h100-2026-11-23-kernels.md). Under the Triton interpreter (the CPU tests) a traced launch cannot run
    on fake tensors, so there it is a custom op with `fake` as its shape function.
    """
    qualname = f"diffexp::{name}"
    if not interpreting():
        return torch.library.triton_op(qualname, _as_op_body(impl), mutates_args=mutates_args)
    op = torch.library.custom_op(qualname, impl, mutates_args=mutates_args)
    op.register_fake(fake)
    return op


def eager_or_op(impl: Callable, op: Callable) -> Callable:
    """`impl` called directly in eager mode, `op` (the registered custom op) while torch.compile traces.

    Going through the dispatcher adds tens of µs of host time per eager call (about 80 µs on the H100's
    host), as much as the smaller kernels take on the GPU; under torch.compile the op is what keeps the
    graph whole and lets Inductor see the launch.
    """

    @functools.wraps(impl)
    def call(*args, **kwargs):
        if torch.compiler.is_compiling():
            return op(*args, **kwargs)
        return impl(*args, **kwargs)

    call.op = op
    return call


def modulation_strides(name: str, t: torch.Tensor, batch: int, seq: int, dim: int) -> tuple[int, int]:
    """(batch, seq) strides that read a per-sample / per-token / shared vector as [B, S, D] (0 where it broadcasts).

    Takes [B, D], [B, 1, D], [B, S, D], and [1, D] / [1, 1, D] (one vector for the whole batch). Plain
    integer arithmetic: a view per tensor would cost more host time than some of the kernels take.
    """
    check_tensor(name, t, ndim=(2, 3))
    shape = (t.shape[0], 1, t.shape[1]) if t.dim() == 2 else tuple(t.shape)
    strides = (t.stride(0), 0, t.stride(1)) if t.dim() == 2 else t.stride()
    if shape[2] != dim or shape[0] not in (1, batch) or shape[1] not in (1, seq):
        raise KernelInputError(
            f"{name}: shape {tuple(t.shape)} does not broadcast to [B={batch}, S={seq}, D={dim}]; "
            f"expected [{batch}, {dim}], [{batch}, 1, {dim}] or [{batch}, {seq}, {dim}]"
        )
    return (0 if shape[0] == 1 else strides[0]), (0 if shape[1] == 1 else strides[1])


@dataclass(frozen=True)
class RowLaunch:
    """How a row kernel is launched: BLOCK_M rows of BLOCK_D (>= D, a power of two) per program."""

    block_d: int
    block_m: int
    num_warps: int


def row_launch(dim: int, override: tuple[int, int] | None = None) -> RowLaunch:
    """Launch shape for kernels that keep whole rows in registers.

    Short rows are packed several to a program so that each holds >= 4096 elements; one warp per 1024
    elements, 4 to 8 warps (32 elements of each tensor per thread). Measured on an H100 at the DiT widths
    (docs/results/h100-2026-11-23-kernels.md): 8192-wide rows run at 91-99% of copy bandwidth with 4 or 8 warps and drop to
    74-93% with 16. `override` = (block_m, num_warps), for the benchmark's sweep.
    """
    block_d = triton.next_power_of_2(dim)
    if override is not None:
        block_m, num_warps = override
    else:
        block_m = max(1, min(64, 4096 // block_d))
        num_warps = warps_for(block_m * block_d)
    if interpreting():
        # The interpreter pays per program, not per element: pack many rows into each.
        block_m = max(1, 8192 // block_d)
    return RowLaunch(block_d=block_d, block_m=block_m, num_warps=num_warps)


def warps_for(tile_elements: int) -> int:
    """One warp per 1024 elements of a tile, between 4 and 8."""
    return max(4, min(8, tile_elements // 1024))


@triton.jit
def layer_norm_fp32(x, mask, dim, eps):
    """Rows of x (fp32, [BLOCK_M, BLOCK_D], masked lanes hold 0) normalised to zero mean, unit variance."""
    mean = tl.sum(x, axis=1) / dim
    centered = tl.where(mask, x - mean[:, None], 0.0)
    var = tl.sum(centered * centered, axis=1) / dim
    return centered * tl.rsqrt(var + eps)[:, None]


@triton.jit
def rms_norm_fp32(x, dim, eps):
    """Rows of x (fp32, [BLOCK_M, BLOCK_D], masked lanes hold 0) divided by their root mean square."""
    mean_sq = tl.sum(x * x, axis=1) / dim
    return x * tl.rsqrt(mean_sq + eps)[:, None]


@triton.jit
def row_coords(pid, n_rows, seq, BLOCK_M: tl.constexpr):
    """Rows handled by program `pid` of a [B, S, D] problem: (row, batch, position) as int64, and the row mask."""
    rows = (pid * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    batch = rows // seq
    return rows, batch, rows - batch * seq, rows < n_rows


@triton.jit
def load_rows(ptr, batch, pos, stride_b, stride_s, cols, mask):
    """A [BLOCK_M, BLOCK_D] tile of a [B, S, D] tensor (any strides but the last) as fp32; masked lanes are 0."""
    offsets = (batch * stride_b + pos * stride_s)[:, None] + cols[None, :]
    return tl.load(ptr + offsets, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def load_rows_split(
    head_ptr, tail_ptr, split, batch, pos, stride_hb, stride_hs, stride_tb, stride_ts, cols, mask, SPLIT: tl.constexpr
):  # fmt: skip
    """load_rows of a [B, S, D] tensor held as two along the sequence: positions < split from `head`, the rest
    from `tail` (at pos - split); what a consumer of `torch.cat([head, tail], dim=1)` reads, without the cat.
    SPLIT=False: one tensor, `tail`, and `head` is never read."""
    if SPLIT:
        in_head = (pos < split)[:, None]
        head = load_rows(head_ptr, batch, pos, stride_hb, stride_hs, cols, mask & in_head)
        tail = load_rows(tail_ptr, batch, pos - split, stride_tb, stride_ts, cols, mask & ~in_head)
        return tl.where(in_head, head, tail)
    return load_rows(tail_ptr, batch, pos, stride_tb, stride_ts, cols, mask)


@dataclass(frozen=True)
class SplitRows:
    """The launch arguments of a [B, S, D] input given as one tensor or as (head, tail) along the sequence."""

    head: torch.Tensor
    tail: torch.Tensor
    split: int
    batch: int
    seq: int
    dim: int

    @property
    def is_split(self) -> bool:
        return self.head is not self.tail

    def strides(self) -> tuple[int, int, int, int]:
        return self.head.stride(0), self.head.stride(1), self.tail.stride(0), self.tail.stride(1)


def split_rows(name: str, head: Optional[torch.Tensor], tail: torch.Tensor) -> SplitRows:
    """Check `tail` (and `head`, when given: same batch, width and dtype) as [B, S, D] inputs of a row kernel."""
    check_tensor(name, tail, ndim=(3,))
    if head is None:
        return SplitRows(tail, tail, 0, *tail.shape)
    check_tensor(f"{name}_head", head, ndim=(3,))
    if (head.shape[0], head.shape[2], head.dtype) != (tail.shape[0], tail.shape[2], tail.dtype):
        raise KernelInputError(
            f"{name}_head: shape {tuple(head.shape)} / {head.dtype} must match {name}'s {tuple(tail.shape)} / "
            f"{tail.dtype} in batch, width and dtype (it is joined to {name} along the sequence)"
        )
    return SplitRows(head, tail, head.shape[1], *joined_shape(head, tail))


@triton.jit
def store_rows(ptr, rows, dim, cols, value, mask):
    """Store a tile into a contiguous [B*S, D] output, cast to the output's dtype."""
    tl.store(ptr + rows[:, None] * dim + cols[None, :], value.to(ptr.dtype.element_ty), mask=mask)
