"""The measured floor on a CUDA GPU (skipped without one): every counted shape timed, and the times sane."""

from __future__ import annotations

import pytest
import torch
from floor_helpers import captured

from diffexp.floor import measure_floor
from diffexp.floor.capture import count_step
from diffexp.floor.shapes import GemmShape
from diffexp.floor.timing import measure

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_tiny_flux_floor_is_measured_at_every_counted_shape():
    cfg, step = captured("model=tiny_flux", "engine.device=cuda")
    assert step.device.type == "cuda"
    counts = count_step(step)
    floor = measure_floor(counts, step.device, cfg.attention.backend, step_ms=50.0)
    assert set(floor.timings.shape_ms) == set(counts.shapes)
    assert all(ms > 0 for ms in floor.timings.shape_ms.values())
    assert floor.timings.copy_gbps > 100
    total = sum(c.total_ms for c in floor.costs()) + counts.memory_bytes / (floor.timings.copy_gbps * 1e9) * 1e3
    assert floor.floor_ms == pytest.approx(total)
    assert floor.metrics()["floor.efficiency"] == pytest.approx(floor.floor_ms / 50.0)


def test_a_flux_size_gemm_runs_at_a_plausible_rate():
    shape = GemmShape(4096, 3072, 3072, True, "bfloat16")
    ms = measure([shape], torch.device("cuda")).shape_ms[shape]
    tflops = shape.flops / (ms * 1e-3) / 1e12
    assert 50 < tflops < 2500, tflops  # an H100/H200 reaches some 600-800 TFLOP/s in bf16 here
