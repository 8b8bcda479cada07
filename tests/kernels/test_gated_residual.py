import pytest
import torch
from kernel_testing import DTYPES, FULL_SHAPES, SMALL_SHAPES

from kernels.gated_residual import (
    gated_residual,
    gated_residual_joint,
    gated_residual_norm_modulate,
    gated_residual_norm_modulate_reference,
    gated_residual_reference,
    launch_gated_residual,
    launch_gated_residual_norm_modulate,
)


def _inputs(shape, dtype, randn):
    b, s, d = shape
    residual, y = randn(b, s, d, dtype=dtype, scale=2.0), randn(b, s, d, dtype=dtype)
    gate, scale, shift = randn(b, d, dtype=dtype), randn(b, d, dtype=dtype, scale=0.5), randn(b, d, dtype=dtype)
    return residual, y, gate, scale, shift


def _check_both(got, want, dtype, check):
    check(got[0], want[0], dtype)
    check(got[1], want[1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SMALL_SHAPES)
def test_gated_residual_matches_reference(shape, dtype, randn, check):
    residual, y, gate, _, _ = _inputs(shape, dtype, randn)
    check(gated_residual(residual, y, gate), gated_residual_reference(residual, y, gate), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SMALL_SHAPES)
def test_fused_matches_reference(shape, dtype, randn, check):
    residual, y, gate, scale, shift = _inputs(shape, dtype, randn)
    got = gated_residual_norm_modulate(residual, y, gate, scale, shift, 1e-6)
    _check_both(got, gated_residual_norm_modulate_reference(residual, y, gate, scale, shift, 1e-6), dtype, check)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", FULL_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_full_size(shape, dtype, randn, check):
    residual, y, gate, scale, shift = _inputs(shape, dtype, randn)
    check(gated_residual(residual, y, gate), gated_residual_reference(residual, y, gate), dtype)
    got = gated_residual_norm_modulate(residual, y, gate, scale, shift, 1e-6)
    _check_both(got, gated_residual_norm_modulate_reference(residual, y, gate, scale, shift, 1e-6), dtype, check)


def test_fused_without_gate(randn, check):
    residual, y, _, scale, shift = _inputs((2, 3, 200), torch.bfloat16, randn)
    got = gated_residual_norm_modulate(residual, y, None, scale, shift, 1e-6)
    _check_both(
        got, gated_residual_norm_modulate_reference(residual, y, None, scale, shift, 1e-6), torch.bfloat16, check
    )


def test_matches_diffusers_style(randn, check):
    """FLUX's double block: residual + gate·attn, norm2, modulation, as two outputs."""
    residual, y, gate, scale, shift = _inputs((2, 5, 64), torch.float32, randn)
    new_residual = residual + gate.unsqueeze(1) * y
    normed = torch.nn.LayerNorm(64, elementwise_affine=False, eps=1e-6)(new_residual)
    want = (new_residual, normed * (1 + scale[:, None]) + shift[:, None])
    _check_both(gated_residual_norm_modulate(residual, y, gate, scale, shift, 1e-6), want, torch.float32, check)


@pytest.mark.parametrize("gate_shape", ["b1d", "bsd", "1d"])
def test_gate_shapes_and_fp32_gate(gate_shape, randn, check):
    """Wan: bf16 residual and branch, fp32 gate of shape [B, 1, D] or per token [B, S, D]."""
    b, s, d = 2, 4, 96
    residual, y = randn(b, s, d, dtype=torch.bfloat16), randn(b, s, d, dtype=torch.bfloat16)
    gate = randn(*{"b1d": (b, 1, d), "bsd": (b, s, d), "1d": (1, d)}[gate_shape])
    check(gated_residual(residual, y, gate), gated_residual_reference(residual, y, gate), torch.bfloat16)


def test_every_element_written(randn, check):
    residual, y, gate, scale, shift = _inputs((3, 7, 1100), torch.float32, randn)
    out = torch.full_like(residual, float("nan"))
    check(launch_gated_residual(residual, y, gate, out), gated_residual_reference(residual, y, gate), torch.float32)
    res_out, mod_out = torch.full_like(residual, float("nan")), torch.full_like(residual, float("nan"))
    got = launch_gated_residual_norm_modulate(residual, y, gate, scale, shift, 1e-6, res_out, mod_out)
    _check_both(
        got, gated_residual_norm_modulate_reference(residual, y, gate, scale, shift, 1e-6), torch.float32, check
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_len,tail_len,dim", [(1, 6, 96), (5, 3, 3072), (7, 9, 200)])
def test_joint_residual_without_cat(head_len, tail_len, dim, dtype, randn, check):
    """FLUX single block: the residual is torch.cat([text, image], dim=1), read from the two parts."""
    head, tail = randn(2, head_len, dim, dtype=dtype, scale=2.0), randn(2, tail_len, dim, dtype=dtype, scale=2.0)
    y, gate = randn(2, head_len + tail_len, dim, dtype=dtype), randn(2, 1, dim, dtype=dtype)
    got = gated_residual_joint(head, tail, y, gate)
    check(got, gated_residual_reference(torch.cat([head, tail], dim=1), y, gate), dtype)


def test_joint_rejects_y_of_another_length(randn):
    from kernels._common import KernelInputError

    with pytest.raises(KernelInputError, match=r"y: shape \(1, 4, 32\) differs from the residual's \(1, 5, 32\)"):
        gated_residual_joint(randn(1, 2, 32), randn(1, 3, 32), randn(1, 4, 32), randn(1, 32))
