"""The sustained floor's synthetic step (diffexp.floor.sustained): exactly the counted work of a real tiny
pipeline's step, checked on CPU by counting what it runs; its timing under load on a GPU (skipped without one)."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from diffexp.floor import measure_floor
from diffexp.floor.capture import count_step
from diffexp.floor.floor import Floor
from diffexp.floor.report import markdown
from diffexp.floor.shapes import ATTENTION, GEMM
from diffexp.floor.sustained import SustainedTiming, memory_pass, synthetic_step


def test_the_synthetic_step_runs_the_counted_gemm_flops_of_a_real_step(tiny_flux_step):
    """torch's FLOP counter has no formula for CPU's fused SDPA: the GEMM FLOPs are compared here, the
    attention calls by count below."""
    cfg, step = tiny_flux_step
    counts = count_step(step)
    run = synthetic_step(counts, torch.device("cpu"))
    with FlopCounterMode(display=False) as counter:
        run()
    assert counts.flops(GEMM) > 0 and counter.get_total_flops() == counts.flops(GEMM)


def test_the_synthetic_step_calls_each_shape_as_often_as_the_step_did(tiny_wan_step):
    cfg, step = tiny_wan_step
    counts = count_step(step)
    seen: dict = {}
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        synthetic_step(counts, torch.device("cpu"))()
    for event in prof.key_averages():
        seen[event.key] = event.count
    gemm_calls = sum(n for s, n in counts.of(GEMM).items())
    timed = sum(
        seen.get(op, 0) for op in ("aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "aten::convolution")
    )
    assert timed == gemm_calls
    assert seen.get("aten::scaled_dot_product_attention", 0) == sum(counts.of(ATTENTION).values())


def test_the_memory_pass_moves_the_counted_bytes(monkeypatch):
    import diffexp.floor.sustained as sustained

    monkeypatch.setattr(sustained, "PASS_MIB", 1)  # 1 MiB buffers: several passes and a remainder
    moved = []
    real_mul = torch.mul

    def counting_mul(a, b, out):
        moved.append(a.numel() * a.element_size() + out.numel() * out.element_size())
        return real_mul(a, b, out=out)

    monkeypatch.setattr(torch, "mul", counting_mul)
    nbytes = 5 * 2**20 + 12_344  # bytes read + written
    memory_pass(nbytes, torch.device("cpu"))()
    assert sum(moved) == pytest.approx(nbytes, abs=4) and len(moved) == 3  # 2 full passes of 1 MiB buffers, 1 remainder


def test_a_floor_with_its_sustained_timing_round_trips_and_reports_both_efficiencies():
    from diffexp.floor.count import ForwardCounts
    from diffexp.floor.shapes import GemmShape
    from diffexp.floor.timing import DeviceTimings

    shape = GemmShape(4096, 3072, 3072, True, "bfloat16")
    counts = ForwardCounts(shapes={shape: 100}, memory_bytes=10**9, forwards=1)
    gpu = {"sm_mhz_mean": 1600.0, "power_w_mean": 690.0}
    floor = Floor(
        counts,
        DeviceTimings({shape: 0.1}, 4000.0, "NVIDIA H200", "sdpa", {"sm_mhz_mean": 1880.0, "power_w_mean": 250.0}),
        step_ms=12.0,
        sustained=SustainedTiming(11.5, 4.0, 10, gpu, [11.5] * 10),
    )
    assert floor.floor_ms == pytest.approx(10.25)
    metrics = floor.metrics()
    assert metrics["floor.efficiency"] == pytest.approx(10.25 / 12)
    assert metrics["floor.efficiency_sustained"] == pytest.approx(11.5 / 12)
    assert metrics["floor.sustained_sm_mhz"] == 1600 and metrics["floor.burst_sm_mhz"] == 1880
    again = Floor.from_dict(json.loads(json.dumps(floor.to_dict(), default=str)))
    assert again.sustained == floor.sustained and again.metrics() == metrics
    md = markdown(floor, "t")
    assert "| efficiency against the sustained floor | 95.8 % |" in md
    assert "1600 MHz / 690 W, after 4.0 s of load" in md and "shapes timed alone | 1880 MHz / 250 W" in md


def test_a_floor_recorded_before_the_sustained_timing_still_reads():
    from pathlib import Path

    data = json.loads((Path(__file__).parents[2] / "docs/results/h200-2026-12-02/replicates/floor.json").read_text())
    floor = Floor.from_dict(data)
    assert floor.sustained is None and "floor.efficiency_sustained" not in floor.metrics()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_sustained_floor_is_timed_under_load():
    from floor_helpers import captured

    cfg, step = captured("model=tiny_flux", "engine.device=cuda")
    floor = measure_floor(count_step(step), step.device, cfg.attention.backend, step_ms=50.0)
    s = floor.sustained
    assert s is not None and s.ms > 0 and len(s.samples_ms) == s.replays and s.heat_s >= 3.9
