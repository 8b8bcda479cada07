import pytest
import torch
from kernel_testing import DTYPES, FULL_SHAPES, SMALL_SHAPES

from kernels._common import KernelInputError
from kernels.norm_modulate import launch_norm_modulate, norm_modulate, norm_modulate_joint, norm_modulate_reference


def _case(shape, dtype, randn, mod_dtype=None):
    b, s, d = shape
    x = randn(b, s, d, dtype=dtype, scale=3.0) + 1.0  # non-zero mean: the centering matters
    scale, shift = randn(b, d, dtype=mod_dtype or dtype, scale=0.5), randn(b, d, dtype=mod_dtype or dtype)
    return x, scale, shift


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SMALL_SHAPES)
def test_matches_reference(shape, dtype, randn, check):
    x, scale, shift = _case(shape, dtype, randn)
    check(norm_modulate(x, scale, shift, 1e-6), norm_modulate_reference(x, scale, shift, 1e-6), dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", FULL_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_reference_full_size(shape, dtype, randn, check):
    x, scale, shift = _case(shape, dtype, randn)
    check(norm_modulate(x, scale, shift, 1e-6), norm_modulate_reference(x, scale, shift, 1e-6), dtype)


@pytest.mark.parametrize("mod_shape", ["b1d", "bsd", "1d"])
def test_modulation_shapes(mod_shape, randn, check):
    b, s, d = 2, 5, 96
    x = randn(b, s, d)
    shapes = {"b1d": (b, 1, d), "bsd": (b, s, d), "1d": (1, d)}[mod_shape]
    scale, shift = randn(*shapes), randn(*shapes)
    check(norm_modulate(x, scale, shift, 1e-6), norm_modulate_reference(x, scale, shift, 1e-6), torch.float32)


def test_fp32_modulation_on_bf16_input(randn, check):
    """Wan: bf16 activations, fp32 scale/shift; output in the activation dtype."""
    x, scale, shift = _case((2, 4, 160), torch.bfloat16, randn, mod_dtype=torch.float32)
    check(norm_modulate(x, scale, shift, 1e-6), norm_modulate_reference(x, scale, shift, 1e-6), torch.bfloat16)


def test_chunked_emb_and_strided_rows(randn, check):
    """scale/shift as chunks of the AdaLN linear's [B, 6D] output; x a strided view."""
    b, s, d = 2, 6, 64
    emb = randn(b, 6 * d)
    shift, scale = emb.chunk(6, dim=1)[:2]
    x = randn(b, s, 2 * d)[..., d:]
    check(norm_modulate(x, scale, shift, 1e-6), norm_modulate_reference(x, scale, shift, 1e-6), torch.float32)


def test_matches_diffusers_style(randn, check):
    x, scale, shift = _case((2, 3, 64), torch.float32, randn)
    want = torch.nn.LayerNorm(64, elementwise_affine=False, eps=1e-6)(x) * (1 + scale[:, None]) + shift[:, None]
    check(norm_modulate(x, scale, shift, 1e-6), want, torch.float32)


def test_eps_is_used(randn, check):
    x, scale, shift = _case((1, 3, 64), torch.float32, randn)
    x = x * 1e-3  # variance ~1e-5, so eps=1e-2 changes the result a lot
    check(norm_modulate(x, scale, shift, 1e-2), norm_modulate_reference(x, scale, shift, 1e-2), torch.float32)


def test_every_element_written(randn, check):
    x, scale, shift = _case((3, 7, 77), torch.float32, randn)
    out = torch.full_like(x, float("nan"))
    check(
        launch_norm_modulate(x, scale, shift, 1e-6, out), norm_modulate_reference(x, scale, shift, 1e-6), torch.float32
    )


def test_rejects_mismatched_modulation(randn):
    with pytest.raises(KernelInputError, match="scale"):
        norm_modulate(randn(2, 3, 64), randn(3, 64), randn(2, 64), 1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head_len,tail_len,dim", [(1, 6, 96), (5, 3, 3072), (7, 9, 200)])
def test_joint_reads_head_and_tail_without_cat(head_len, tail_len, dim, dtype, randn, check):
    """FLUX single block: the input is torch.cat([text, image], dim=1); the tail a strided view of a wider tensor."""
    head = randn(2, head_len, dim, dtype=dtype, scale=3.0) + 1.0
    tail = (randn(2, tail_len, 2 * dim, dtype=dtype, scale=2.0) - 1.0)[..., dim:]
    scale, shift = randn(2, dim, dtype=dtype, scale=0.5), randn(2, dim, dtype=dtype)
    got = norm_modulate_joint(head, tail, scale, shift, 1e-6)
    want = norm_modulate_reference(torch.cat([head, tail], dim=1), scale, shift, 1e-6)
    assert got.shape == (2, head_len + tail_len, dim) and got.is_contiguous()
    check(got, want, dtype)


def test_joint_rejects_a_head_of_another_width(randn):
    with pytest.raises(KernelInputError, match=r"x_head: shape \(1, 2, 32\).*must match x's \(1, 3, 64\)"):
        norm_modulate_joint(randn(1, 2, 32), randn(1, 3, 64), randn(1, 64), randn(1, 64), 1e-6)
