"""Kernel tests run on a GPU when there is one, else through Triton's CPU interpreter on small shapes."""

import os
import random
import zlib
from pathlib import Path

import pytest
import torch

# Triton reads TRITON_INTERPRET when a kernel is decorated, i.e. when kernels/ is first imported: set it
# here, before any test module imports kernels.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

ON_GPU = torch.cuda.is_available()
# Fresh inputs every session; the seed is printed in the header so a failure can be replayed.
SEED = int(os.environ.get("KERNEL_TEST_SEED", random.randrange(2**31)))

# Output vs fp32-arithmetic reference: about two ulps of the output dtype, and the relative norm error.
TOLERANCES = {
    torch.bfloat16: dict(atol=2e-2, rtol=1.6e-2, rel_norm=1e-2),
    torch.float16: dict(atol=2e-3, rtol=2e-3, rel_norm=1e-3),
    torch.float32: dict(atol=1e-5, rtol=1e-5, rel_norm=1e-5),
}


def pytest_report_header(config):
    mode = "CUDA" if ON_GPU else "Triton interpreter (CPU)"
    return f"kernels: {mode}, KERNEL_TEST_SEED={SEED}"


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not ON_GPU and here in Path(item.path).parents:
            item.add_marker(skip)


@pytest.fixture
def device() -> torch.device:
    return torch.device("cuda" if ON_GPU else "cpu")


@pytest.fixture
def gen(request, device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(SEED + zlib.crc32(request.node.nodeid.encode()) % 10_000)


@pytest.fixture
def randn(gen, device):
    """randn(*shape, dtype=..., scale=1.0): normal samples made in fp32, then cast."""

    def make(*shape, dtype=torch.float32, scale=1.0):
        return (scale * torch.randn(shape, generator=gen, device=device)).to(dtype)

    return make


def assert_close(got, want, dtype):
    """Every element written (no NaN from poisoned or empty memory), within the dtype's tolerance."""
    tol = TOLERANCES[dtype]
    assert got.dtype == want.dtype and got.shape == want.shape
    assert torch.isfinite(got).all(), "non-finite output: an element was not written"
    torch.testing.assert_close(got, want, atol=tol["atol"], rtol=tol["rtol"])
    rel = (got.double() - want.double()).norm() / want.double().norm().clamp_min(1e-30)
    assert rel < tol["rel_norm"], f"relative error {rel:.2e} over {tol['rel_norm']:.0e}"


@pytest.fixture
def check():
    return assert_close
