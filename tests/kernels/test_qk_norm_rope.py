import pytest
import torch
from diffusers.models.embeddings import apply_rotary_emb
from diffusers.models.transformers.transformer_flux import FluxPosEmbed
from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed
from kernel_testing import DTYPES

from kernels._common import KernelInputError
from kernels.qk_norm_rope import qk_norm_rope, qk_norm_rope_joint, qk_norm_rope_out, qk_norm_rope_reference


def _flux_freqs(seq, device):
    ids = torch.randint(0, 64, (seq, 3), device=device).float()
    return FluxPosEmbed(theta=10000, axes_dim=[16, 56, 56])(ids)  # head_dim 128, as FLUX.1


def _wan_freqs(frames, height, width, head_dim, device):
    rope = WanRotaryPosEmbed(head_dim, (1, 2, 2), max_seq_len=1024).to(device)
    return rope(torch.empty(1, 16, frames, 2 * height, 2 * width, device=device))  # ([1, S, 1, Dh]) * 2


def _rms(x, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def _wan_inline_rope(hidden_states, freqs_cos, freqs_sin):
    """Copied from diffusers 0.42.1 WanAttnProcessor.__call__ (a nested function there, not importable)."""
    x1, x2 = hidden_states.unflatten(-1, (-1, 2)).unbind(-1)
    cos = freqs_cos[..., 0::2]
    sin = freqs_sin[..., 1::2]
    out = torch.empty_like(hidden_states)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(hidden_states)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,seq,heads", [(1, 5, 3), (2, 7, 24)])
def test_flux_layout_matches_diffusers(batch, seq, heads, dtype, randn, check, device):
    """Per-head RMSNorm (torch.nn.RMSNorm) + diffusers' apply_rotary_emb, on FluxPosEmbed's tables."""
    q, k = randn(batch, seq, heads, 128, dtype=dtype), randn(batch, seq, heads, 128, dtype=dtype)
    norm_q, norm_k = torch.nn.RMSNorm(128, eps=1e-6).to(device), torch.nn.RMSNorm(128, eps=1e-6).to(device)
    with torch.no_grad():  # weights representable in the test dtype, so both sides see the same values
        norm_q.weight.copy_((randn(128, scale=0.2) + 1).to(dtype))
        norm_k.weight.copy_((randn(128, scale=0.2) + 1).to(dtype))
        cos, sin = _flux_freqs(seq, device)
        got = qk_norm_rope(q, k, norm_q.weight.to(dtype), norm_k.weight.to(dtype), cos, sin, 1e-6)
        # The diffusers path in fp32, so that the only rounding on that side is the final cast.
        want_q = apply_rotary_emb(norm_q(q.float()), (cos, sin), sequence_dim=1).to(dtype)
        want_k = apply_rotary_emb(norm_k(k.float()), (cos, sin), sequence_dim=1).to(dtype)
    check(got[0], want_q, dtype)
    check(got[1], want_k, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_wan_layout_matches_diffusers(dtype, randn, check, device):
    """RMSNorm across all heads (weight [H·Dh]) + Wan's own rotary, on WanRotaryPosEmbed's tables."""
    heads, head_dim = 4, 24  # Wan's t/h/w split of a head_dim that is not a power of two
    cos, sin = _wan_freqs(2, 2, 3, head_dim, device)
    seq = cos.shape[1]
    q, k = randn(2, seq, heads * head_dim, dtype=dtype), randn(2, seq, heads * head_dim, dtype=dtype)
    w_q, w_k = randn(heads * head_dim, dtype=dtype, scale=0.2) + 1, randn(heads * head_dim, dtype=dtype, scale=0.2) + 1
    got = qk_norm_rope(q.unflatten(2, (heads, -1)), k.unflatten(2, (heads, -1)), w_q, w_k, cos, sin, 1e-6)
    want_q = _wan_inline_rope((_rms(q.float()) * w_q.float()).unflatten(2, (heads, -1)), cos, sin).to(dtype)
    want_k = _wan_inline_rope((_rms(k.float()) * w_k.float()).unflatten(2, (heads, -1)), cos, sin).to(dtype)
    check(got[0], want_q, dtype)
    check(got[1], want_k, dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,seq,heads", [(1, 4096, 24), (2, 4608, 24), (1, 32760, 40), (3, 77, 5)])
def test_full_size(batch, seq, heads, dtype, randn, check, device):
    q, k = randn(batch, seq, heads, 128, dtype=dtype), randn(batch, seq, heads, 128, dtype=dtype)
    w_q, w_k = randn(128, dtype=dtype) + 1, randn(128, dtype=dtype) + 1
    cos, sin = _flux_freqs(seq, device)
    got = qk_norm_rope(q, k, w_q, w_k, cos, sin, 1e-6)
    want = qk_norm_rope_reference(q, k, w_q, w_k, cos, sin, 1e-6)
    check(got[0], want[0], dtype)
    check(got[1], want[1], dtype)


def test_in_place(randn, check, device):
    q, k = randn(2, 6, 3, 64), randn(2, 6, 3, 64)
    w_q, w_k = randn(64) + 1, randn(64) + 1
    angles = randn(6, 32).repeat_interleave(2, -1)
    want = qk_norm_rope_reference(q, k, w_q, w_k, angles.cos(), angles.sin(), 1e-6)
    qk_norm_rope_out(q, k, w_q, w_k, angles.cos(), angles.sin(), 1e-6, q, k)
    check(q, want[0], torch.float32)
    check(k, want[1], torch.float32)


def test_into_joint_buffer_from_fused_projection(randn, check, device):
    """FLUX double block: text and image parts written into one buffer; q/k read from a fused QKV output."""
    batch, text, image, heads, head_dim = 2, 3, 5, 2, 16
    qkv_txt, qkv_img = randn(batch, text, 3 * heads * head_dim), randn(batch, image, 3 * heads * head_dim)
    q_txt, k_txt, _ = (t.unflatten(-1, (heads, head_dim)) for t in qkv_txt.chunk(3, dim=-1))
    q_img, k_img, _ = (t.unflatten(-1, (heads, head_dim)) for t in qkv_img.chunk(3, dim=-1))
    w = [randn(head_dim) + 1 for _ in range(4)]
    angles = randn(text + image, head_dim // 2).repeat_interleave(2, -1)
    cos, sin = angles.cos(), angles.sin()
    q_all = torch.full((batch, text + image, heads, head_dim), float("nan"), device=device)
    k_all = torch.full_like(q_all, float("nan"))
    qk_norm_rope_out(q_txt, k_txt, w[0], w[1], cos[:text], sin[:text], 1e-6, q_all[:, :text], k_all[:, :text])
    qk_norm_rope_out(q_img, k_img, w[2], w[3], cos[text:], sin[text:], 1e-6, q_all[:, text:], k_all[:, text:])
    want_txt = qk_norm_rope_reference(q_txt, k_txt, w[0], w[1], cos[:text], sin[:text], 1e-6)
    want_img = qk_norm_rope_reference(q_img, k_img, w[2], w[3], cos[text:], sin[text:], 1e-6)
    check(q_all, torch.cat([want_txt[0], want_img[0]], dim=1), torch.float32)
    check(k_all, torch.cat([want_txt[1], want_img[1]], dim=1), torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,text,image,heads", [(1, 3, 5, 2), (2, 7, 4, 3)])
def test_joint_text_then_image(batch, text, image, heads, dtype, randn, check):
    """FLUX double block: text tokens (their own weights and eps) then image tokens, one launch, one buffer;
    q/k read in place from fused QKV projections."""
    head_dim = 16
    qkv_txt, qkv_img = (
        randn(batch, text, 3 * heads * head_dim, dtype=dtype),
        randn(batch, image, 3 * heads * head_dim, dtype=dtype),
    )
    q_txt, k_txt, _ = (t.unflatten(-1, (heads, head_dim)) for t in qkv_txt.chunk(3, dim=-1))
    q_img, k_img, _ = (t.unflatten(-1, (heads, head_dim)) for t in qkv_img.chunk(3, dim=-1))
    w = [(randn(head_dim) + 1).to(dtype) for _ in range(4)]
    angles = randn(text + image, head_dim // 2).repeat_interleave(2, -1)
    cos, sin = angles.cos(), angles.sin()
    q_all, k_all = qk_norm_rope_joint(q_txt, k_txt, w[0], w[1], 1e-5, q_img, k_img, w[2], w[3], 1e-6, cos, sin)
    want_txt = qk_norm_rope_reference(q_txt, k_txt, w[0], w[1], cos[:text], sin[:text], 1e-5)
    want_img = qk_norm_rope_reference(q_img, k_img, w[2], w[3], cos[text:], sin[text:], 1e-6)
    assert q_all.shape == (batch, text + image, heads, head_dim) and q_all.is_contiguous()
    check(q_all, torch.cat([want_txt[0], want_img[0]], dim=1), dtype)
    check(k_all, torch.cat([want_txt[1], want_img[1]], dim=1), dtype)


def test_joint_rejects_mismatched_sources(randn):
    q_txt, q_img = randn(1, 2, 2, 16), randn(1, 3, 2, 16)
    cos = randn(5, 16)
    with pytest.raises(KernelInputError, match="text_q_weight and image_q_weight: give both"):
        qk_norm_rope_joint(q_txt, q_txt, randn(16), None, 1e-6, q_img, q_img, None, None, 1e-6, cos, cos)
    with pytest.raises(KernelInputError, match=r"image_q: shape \(1, 3, 4, 8\).*must match text_q's"):
        qk_norm_rope_joint(
            q_txt, q_txt, None, None, 1e-6, randn(1, 3, 4, 8), randn(1, 3, 4, 8), None, None, 1e-6, cos, cos
        )
    with pytest.raises(KernelInputError, match=r"cos: expected \[S=5, Dh=16\]"):
        qk_norm_rope_joint(q_txt, q_txt, None, None, 1e-6, q_img, q_img, None, None, 1e-6, cos[:4], cos)


def test_without_weights(randn, check):
    q, k = randn(1, 4, 2, 32), randn(1, 4, 2, 32)
    angles = randn(4, 16).repeat_interleave(2, -1)
    got = qk_norm_rope(q, k, None, None, angles.cos(), angles.sin(), 1e-6)
    want = qk_norm_rope_reference(q, k, None, None, angles.cos(), angles.sin(), 1e-6)
    check(got[0], want[0], torch.float32)
    check(got[1], want[1], torch.float32)


def test_rejects_unpacked_heads(randn):
    q = randn(1, 4, 32, 2).transpose(2, 3)  # last dim not contiguous
    with pytest.raises(KernelInputError, match="last dimension must be contiguous"):
        qk_norm_rope(q, q, None, None, randn(4, 32), randn(4, 32), 1e-6)
    heads_strided = randn(1, 4, 2, 64)[..., :32]  # stride(-2) == 64 != head_dim
    angles = randn(4, 32)
    with pytest.raises(KernelInputError, match="heads must be packed"):
        qk_norm_rope(heads_strided, heads_strided, None, None, angles, angles, 1e-6)


def test_rejects_mixed_weight_kinds(randn):
    q = randn(1, 4, 2, 32)
    angles = randn(4, 32)
    with pytest.raises(KernelInputError, match="both"):
        qk_norm_rope(q, q, randn(32), randn(64), angles, angles, 1e-6)
