"""Q/K RMSNorm fused with rotary embedding (FLUX / Wan layout), for both tensors in one launch.

Entry points (each the op `torch.ops.diffexp.<name>` under torch.compile, a direct launch in eager mode):
- `qk_norm_rope(q, k, q_weight, k_weight, cos, sin, eps)` -> (q_out, k_out), new tensors;
- `qk_norm_rope_out(q, k, q_weight, k_weight, cos, sin, eps, q_out, k_out)` writes into
  given tensors: pass q_out=q, k_out=k for in place, or slices of a larger buffer. (Under torch.compile,
  writes into slices become copies: functionalisation. Use the joint form for that.)
- `qk_norm_rope_joint(text_q, text_k, text_q_weight, text_k_weight, text_eps, image_q, image_k,
  image_q_weight, image_k_weight, image_eps, cos, sin)` -> (q, k) of the joint sequence [B, St + Si, H, Dh],
  text tokens first, each part with its own weights and eps, in one launch (FLUX's double blocks; it
  saves the `torch.cat` of q and k). cos/sin cover the joint sequence.

q, k: [B, S, H, Dh] with heads packed (stride(-1) == 1, stride(-2) == Dh; batch and sequence strides are
free, so chunks of a fused QKV projection are read in place). Dh must be even.
Weights: None, [Dh] (per-head RMSNorm: FLUX's norm_q/norm_k) or [H·Dh] (one RMSNorm across all heads of a
token: Wan's `rms_norm_across_heads`); the weight's size says which.
cos, sin: [S, Dh] (or any shape that reshapes to it, e.g. Wan's [1, S, 1, Dh]), any float dtype, in the
interleaved-pair layout that diffusers' `get_1d_rotary_pos_embed(..., repeat_interleave_real=True)` makes
for FLUX and Wan: cos[..., 2i] == cos[..., 2i+1]. For pair i: out[2i] = x[2i]·c − x[2i+1]·s and
out[2i+1] = x[2i]·s + x[2i+1]·c with c = cos[2i], s = sin[2i+1] — exactly Wan's inline `apply_rotary_emb`,
and, on such tables, exactly diffusers' `apply_rotary_emb(use_real=True, use_real_unbind_dim=-1)`.
Arithmetic is fp32; outputs are in q's and k's dtypes.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from kernels._common import (
    SUPPORTED_DTYPES,
    KernelInputError,
    check_same_device,
    check_tensor,
    eager_or_op,
    interpreting,
    joined_shape,
    kernel_op,
    launcher,
    warps_for,
)


@triton.jit
def _norm_rope_tile(
    x, w_ptr, tile, mask, d, heads, head_dim, eps, cos, sin,
    HAS_WEIGHT: tl.constexpr, ACROSS_HEADS: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """RMSNorm one token's [H, Dh] tile (per head or across heads), apply the weight, rotate the pairs."""
    if ACROSS_HEADS:
        mean_sq = tl.sum(tl.sum(x * x, axis=1), axis=0) / (heads * head_dim)
        x = x * tl.rsqrt(mean_sq + eps)
        if HAS_WEIGHT:
            x = x * tl.load(w_ptr + tile, mask=mask, other=0.0).to(tl.float32)
    else:
        mean_sq = tl.sum(x * x, axis=1) / head_dim
        x = x * tl.rsqrt(mean_sq + eps)[:, None]
        if HAS_WEIGHT:
            x = x * tl.load(w_ptr + d, mask=d < head_dim, other=0.0).to(tl.float32)[None, :]
    even, odd = tl.split(tl.reshape(x, (BLOCK_H, BLOCK_D // 2, 2)))
    rot_even = even * cos[None, :] - odd * sin[None, :]
    rot_odd = even * sin[None, :] + odd * cos[None, :]
    return tl.reshape(tl.join(rot_even, rot_odd), (BLOCK_H, BLOCK_D))


@triton.jit
def _qk_norm_rope_kernel(
    qa_ptr, ka_ptr, qwa_ptr, kwa_ptr, qb_ptr, kb_ptr, qwb_ptr, kwb_ptr, cos_ptr, sin_ptr, q_out_ptr, k_out_ptr,
    seq, split, heads, head_dim, eps_a, eps_b,
    stride_qab, stride_qas, stride_kab, stride_kas, stride_qbb, stride_qbs, stride_kbb, stride_kbs,
    stride_cos, stride_sin, stride_qob, stride_qos, stride_kob, stride_kos,
    HAS_Q_WEIGHT: tl.constexpr, HAS_K_WEIGHT: tl.constexpr, ACROSS_HEADS: tl.constexpr,
    BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """One program per output token. Positions < split come from source a, the rest from source b (row pos -
    split there): FLUX's text and image tokens go straight into the joint sequence. split = 0: b only."""
    row = tl.program_id(0).to(tl.int64)
    batch = row // seq
    pos = row - batch * seq
    h = tl.arange(0, BLOCK_H)
    d = tl.arange(0, BLOCK_D)
    mask = (h < heads)[:, None] & (d < head_dim)[None, :]
    tile = h[:, None] * head_dim + d[None, :]
    if pos < split:
        q_src = qa_ptr + batch * stride_qab + pos * stride_qas
        k_src = ka_ptr + batch * stride_kab + pos * stride_kas
        qw_ptr, kw_ptr, eps = qwa_ptr, kwa_ptr, eps_a
    else:
        q_src = qb_ptr + batch * stride_qbb + (pos - split) * stride_qbs
        k_src = kb_ptr + batch * stride_kbb + (pos - split) * stride_kbs
        qw_ptr, kw_ptr, eps = qwb_ptr, kwb_ptr, eps_b
    # Issue every load before the first reduction: more bytes in flight per program.
    q = tl.load(q_src + tile, mask=mask, other=0.0).to(tl.float32)
    k = tl.load(k_src + tile, mask=mask, other=0.0).to(tl.float32)
    pair = tl.arange(0, BLOCK_D // 2)
    pair_mask = 2 * pair < head_dim
    cos = tl.load(cos_ptr + pos * stride_cos + 2 * pair, mask=pair_mask, other=0.0).to(tl.float32)
    sin = tl.load(sin_ptr + pos * stride_sin + 2 * pair + 1, mask=pair_mask, other=0.0).to(tl.float32)
    q = _norm_rope_tile(
        q, qw_ptr, tile, mask, d, heads, head_dim, eps, cos, sin, HAS_Q_WEIGHT, ACROSS_HEADS, BLOCK_H, BLOCK_D
    )
    tl.store(q_out_ptr + batch * stride_qob + pos * stride_qos + tile, q.to(q_out_ptr.dtype.element_ty), mask=mask)
    k = _norm_rope_tile(
        k, kw_ptr, tile, mask, d, heads, head_dim, eps, cos, sin, HAS_K_WEIGHT, ACROSS_HEADS, BLOCK_H, BLOCK_D
    )
    tl.store(k_out_ptr + batch * stride_kob + pos * stride_kos + tile, k.to(k_out_ptr.dtype.element_ty), mask=mask)


def _check_heads_packed(name: str, t: torch.Tensor, shape: torch.Size) -> None:
    check_tensor(name, t, ndim=(4,))
    if t.shape != shape:
        raise KernelInputError(f"{name}: shape {tuple(t.shape)} differs from q's {tuple(shape)}")
    if t.numel() > 0 and t.stride(-2) != t.shape[-1]:
        raise KernelInputError(
            f"{name}: heads must be packed (stride(-2) == head_dim == {t.shape[-1]}), got strides {t.stride()}; "
            "call .contiguous() first"
        )


def _check_weight(name: str, w: Optional[torch.Tensor], heads: int, head_dim: int) -> Optional[bool]:
    """None without a weight, else whether it normalises across heads ([H·Dh]) rather than per head ([Dh])."""
    if w is None:
        return None
    check_tensor(name, w, ndim=(1,))
    if w.shape[0] == head_dim:
        return False
    if w.shape[0] == heads * head_dim:
        return True
    raise KernelInputError(
        f"{name}: expected [{head_dim}] (per head) or [{heads * head_dim}] (across heads), got {tuple(w.shape)}"
    )


def _rope_table(name: str, t: torch.Tensor, seq: int, head_dim: int) -> torch.Tensor:
    check_tensor(name, t, dtypes=SUPPORTED_DTYPES + (torch.float64,))
    if t.shape[-1] != head_dim or t.numel() != seq * head_dim:
        raise KernelInputError(f"{name}: expected [S={seq}, Dh={head_dim}] (or a reshape of it), got {tuple(t.shape)}")
    return t.reshape(seq, head_dim)


def _check_source(tag: str, q, k, q_weight, k_weight, first: torch.Tensor) -> Optional[bool]:
    """One source's q/k/weights; q must match `first` (source a's q) in batch, heads, head_dim and dtype."""
    _check_heads_packed(f"{tag}q", q, q.shape)
    _check_heads_packed(f"{tag}k", k, q.shape)
    if (q.shape[0], *q.shape[2:]) != (first.shape[0], *first.shape[2:]) or q.dtype != first.dtype:
        raise KernelInputError(
            f"{tag}q: shape {tuple(q.shape)} / {q.dtype} must match text_q's {tuple(first.shape)} / {first.dtype} "
            "in batch, heads, head_dim and dtype"
        )
    heads, head_dim = q.shape[2], q.shape[3]
    kinds = {
        _check_weight(f"{tag}q_weight", q_weight, heads, head_dim),
        _check_weight(f"{tag}k_weight", k_weight, heads, head_dim),
    }
    if kinds >= {True, False}:
        raise KernelInputError(
            f"{tag}q_weight and {tag}k_weight must both be per head [Dh] or both across heads [H·Dh]"
        )
    return next(iter(kinds - {None}), None)


def _launch(sources: list[tuple], cos, sin, q_out, k_out, launch_override) -> None:
    """sources: one or two (q, k, q_weight, k_weight, eps), laid one after another along the sequence."""
    tags = ["", ""] if len(sources) == 1 else ["text_", "image_"]
    across = {_check_source(tag, q, k, qw, kw, sources[0][0]) for tag, (q, k, qw, kw, _) in zip(tags, sources)}
    if len(across - {None}) > 1:
        raise KernelInputError("every q/k weight must be per head [Dh], or every one across heads [H·Dh]")
    for name, i in (("q_weight", 2), ("k_weight", 3)) if len(sources) == 2 else ():
        text, image = sources[0][i], sources[1][i]
        if (text is None) != (image is None) or (text is not None and text.dtype != image.dtype):
            raise KernelInputError(f"text_{name} and image_{name}: give both (in one dtype) or neither")
    q0 = sources[0][0]
    batch, heads, head_dim = q0.shape[0], q0.shape[2], q0.shape[3]
    seq = sum(src[0].shape[1] for src in sources)
    if head_dim % 2:
        raise KernelInputError(f"q: head_dim must be even for rotary pairs, got {head_dim}")
    out_shape = torch.Size((batch, seq, heads, head_dim))
    _check_heads_packed("q_out", q_out, out_shape)
    _check_heads_packed("k_out", k_out, out_shape)
    cos2, sin2 = _rope_table("cos", cos, seq, head_dim), _rope_table("sin", sin, seq, head_dim)
    check_same_device(
        q_out=q_out, k_out=k_out, cos=cos, sin=sin,
        **{f"{tag}{name}": t for tag, src in zip(tags, sources) for name, t in zip(("q", "k", "q_weight", "k_weight"), src)},
    )  # fmt: skip
    if q_out.numel() == 0:
        return
    (qa, ka, qwa, kwa, eps_a), (qb, kb, qwb, kwb, eps_b) = sources[0], sources[-1]
    split = qa.shape[1] if len(sources) == 2 else 0
    block_h, block_d = triton.next_power_of_2(heads), triton.next_power_of_2(head_dim)
    num_warps = launch_override[1] if launch_override else warps_for(block_h * block_d)
    launcher(_qk_norm_rope_kernel)[(batch * seq,)](
        qa, ka, qa if qwa is None else qwa, ka if kwa is None else kwa,
        qb, kb, qb if qwb is None else qwb, kb if kwb is None else kwb,
        cos2, sin2, q_out, k_out,
        seq, split, heads, head_dim, eps_a, eps_b,
        qa.stride(0), qa.stride(1), ka.stride(0), ka.stride(1), qb.stride(0), qb.stride(1), kb.stride(0), kb.stride(1),
        cos2.stride(0), sin2.stride(0), q_out.stride(0), q_out.stride(1), k_out.stride(0), k_out.stride(1),
        HAS_Q_WEIGHT=qwb is not None, HAS_K_WEIGHT=kwb is not None, ACROSS_HEADS=True in across,
        BLOCK_H=block_h, BLOCK_D=block_d, num_warps=1 if interpreting() else num_warps,
    )  # fmt: skip


def launch_qk_norm_rope(
    q: torch.Tensor,
    k: torch.Tensor,
    q_weight: Optional[torch.Tensor],
    k_weight: Optional[torch.Tensor],
    cos: torch.Tensor,
    sin: torch.Tensor,
    eps: float,
    q_out: torch.Tensor,
    k_out: torch.Tensor,
    launch_override: tuple[int, int] | None = None,
) -> None:
    """Write the normalised, rotated q and k into q_out and k_out (which may be q and k)."""
    _launch([(q, k, q_weight, k_weight, eps)], cos, sin, q_out, k_out, launch_override)


def _qk_norm_rope(
    q: torch.Tensor,
    k: torch.Tensor,
    q_weight: Optional[torch.Tensor],
    k_weight: Optional[torch.Tensor],
    cos: torch.Tensor,
    sin: torch.Tensor,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RMSNorm + RoPE of q and k into new contiguous tensors (Triton); see the module docstring."""
    q_out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    k_out = torch.empty(k.shape, dtype=k.dtype, device=k.device)
    launch_qk_norm_rope(q, k, q_weight, k_weight, cos, sin, eps, q_out, k_out)
    return q_out, k_out


def _qk_norm_rope_fake(q, k, q_weight, k_weight, cos, sin, eps=1e-6):
    return q.new_empty(q.shape), k.new_empty(k.shape)


qk_norm_rope_op = kernel_op("qk_norm_rope", _qk_norm_rope, _qk_norm_rope_fake)


def _qk_norm_rope_joint(
    text_q: torch.Tensor,
    text_k: torch.Tensor,
    text_q_weight: Optional[torch.Tensor],
    text_k_weight: Optional[torch.Tensor],
    text_eps: float,
    image_q: torch.Tensor,
    image_k: torch.Tensor,
    image_q_weight: Optional[torch.Tensor],
    image_k_weight: Optional[torch.Tensor],
    image_eps: float,
    cos: torch.Tensor,
    sin: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FLUX joint attention's q and k, [B, St + Si, H, Dh]: text tokens first, each part with its own
    weights and eps, in one launch and no torch.cat."""
    q_out = text_q.new_empty(joined_shape(text_q, image_q))
    k_out = text_k.new_empty(joined_shape(text_q, image_q))
    sources = [
        (text_q, text_k, text_q_weight, text_k_weight, text_eps),
        (image_q, image_k, image_q_weight, image_k_weight, image_eps),
    ]
    _launch(sources, cos, sin, q_out, k_out, None)
    return q_out, k_out


def _qk_norm_rope_joint_fake(text_q, text_k, text_q_weight, text_k_weight, text_eps, image_q, image_k, *rest):
    return text_q.new_empty(joined_shape(text_q, image_q)), text_k.new_empty(joined_shape(text_q, image_q))


qk_norm_rope_joint_op = kernel_op("qk_norm_rope_joint", _qk_norm_rope_joint, _qk_norm_rope_joint_fake)


def _qk_norm_rope_out(
    q: torch.Tensor,
    k: torch.Tensor,
    q_weight: Optional[torch.Tensor],
    k_weight: Optional[torch.Tensor],
    cos: torch.Tensor,
    sin: torch.Tensor,
    eps: float,
    q_out: torch.Tensor,
    k_out: torch.Tensor,
) -> None:
    """RMSNorm + RoPE of q and k written into q_out and k_out (Triton; in place when they are q and k)."""
    launch_qk_norm_rope(q, k, q_weight, k_weight, cos, sin, eps, q_out, k_out)


def _qk_norm_rope_out_fake(q, k, q_weight, k_weight, cos, sin, eps, q_out, k_out) -> None:
    return None


qk_norm_rope_out_op = kernel_op("qk_norm_rope_out", _qk_norm_rope_out, _qk_norm_rope_out_fake, ("q_out", "k_out"))


qk_norm_rope = eager_or_op(_qk_norm_rope, qk_norm_rope_op)
qk_norm_rope_out = eager_or_op(launch_qk_norm_rope, qk_norm_rope_out_op)
qk_norm_rope_joint = eager_or_op(_qk_norm_rope_joint, qk_norm_rope_joint_op)


def _rms_norm_heads(x: torch.Tensor, weight: Optional[torch.Tensor], eps: float) -> torch.Tensor:
    xf = x.float()
    if weight is not None and weight.numel() != x.shape[-1]:  # across heads
        flat = xf.flatten(-2)
        normed = (flat * torch.rsqrt(flat.pow(2).mean(-1, keepdim=True) + eps) * weight.float()).unflatten(
            -1, x.shape[-2:]
        )
        return normed
    normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return normed * weight.float() if weight is not None else normed


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """diffusers' apply_rotary_emb(use_real=True, use_real_unbind_dim=-1, sequence_dim=1) in fp32."""
    cos = cos.reshape(x.shape[1], x.shape[-1]).float()[None, :, None, :]
    sin = sin.reshape(x.shape[1], x.shape[-1]).float()[None, :, None, :]
    real, imag = x.unflatten(-1, (-1, 2)).unbind(-1)
    rotated = torch.stack([-imag, real], dim=-1).flatten(-2)
    return x * cos + rotated * sin


def qk_norm_rope_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    q_weight: Optional[torch.Tensor],
    k_weight: Optional[torch.Tensor],
    cos: torch.Tensor,
    sin: torch.Tensor,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain PyTorch, fp32 throughout, one cast at the end."""
    q_ref = _rope(_rms_norm_heads(q, q_weight, eps), cos, sin).to(q.dtype)
    k_ref = _rope(_rms_norm_heads(k, k_weight, eps), cos, sin).to(k.dtype)
    return q_ref, k_ref
