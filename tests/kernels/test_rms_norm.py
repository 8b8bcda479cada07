import pytest
import torch
from kernel_testing import DTYPES, FULL_SHAPES, ON_GPU, SMALL_SHAPES

from kernels._common import KernelInputError
from kernels.rms_norm import launch_rms_norm, rms_norm, rms_norm_reference


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SMALL_SHAPES)
def test_matches_reference(shape, dtype, randn, check):
    x, w = randn(*shape, dtype=dtype), randn(shape[-1], dtype=dtype)
    check(rms_norm(x, w, 1e-6), rms_norm_reference(x, w, 1e-6), dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", FULL_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_reference_full_size(shape, dtype, randn, check):
    x, w = randn(*shape, dtype=dtype), randn(shape[-1], dtype=dtype)
    check(rms_norm(x, w, 1e-6), rms_norm_reference(x, w, 1e-6), dtype)


def test_matches_torch_rms_norm(randn, check):
    x, w = randn(2, 7, 128), randn(128)
    check(rms_norm(x, w, 1e-6), torch.nn.functional.rms_norm(x, (128,), w, 1e-6), torch.float32)


@pytest.mark.parametrize("leading", [(), (5,), (2, 3, 4)])
def test_any_rank_and_no_weight(leading, randn, check):
    x = randn(*leading, 6, 64) if leading else randn(6, 64)
    check(rms_norm(x, None, 1e-5), rms_norm_reference(x, None, 1e-5), torch.float32)


def test_strided_rows_are_read_in_place(randn, check):
    fused = randn(2, 9, 3 * 96, dtype=torch.bfloat16)  # like a chunk of a fused QKV projection
    x = fused[..., 96:192]
    w = randn(96, dtype=torch.bfloat16)
    check(rms_norm(x, w, 1e-6), rms_norm_reference(x, w, 1e-6), torch.bfloat16)


def test_every_element_written(randn, check):
    x, w = randn(3, 5, 77), randn(77)
    out = torch.full_like(x, float("nan"))
    check(launch_rms_norm(x, w, 1e-6, out), rms_norm_reference(x, w, 1e-6), torch.float32)


def test_rejects_non_contiguous_last_dim(randn):
    x = randn(4, 64, 8).transpose(1, 2)
    with pytest.raises(KernelInputError, match="last dimension must be contiguous"):
        rms_norm(x, None, 1e-6)


def test_rejects_wrong_weight(randn):
    with pytest.raises(KernelInputError, match="weight"):
        rms_norm(randn(2, 3, 64), randn(32), 1e-6)


@pytest.mark.skipif(ON_GPU, reason="CPU tensors are only rejected when there is no interpreter")
def test_rejects_cpu_without_interpreter(randn, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(KernelInputError, match="CUDA"):
        rms_norm(randn(2, 3, 64), None, 1e-6)
