"""The floor from given per-shape times: Σ calls × ms + bytes / copy bandwidth, efficiency, metrics, the
category table against a profiled run, and floor.json read back."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from torch import nn

from diffexp.floor import Floor, ForwardCounts, floor_for
from diffexp.floor.report import category_rows, markdown, run_category_ms
from diffexp.floor.shapes import ATTENTION, GEMM, MEMORY, AttentionShape, GemmShape
from diffexp.floor.timing import DeviceTimings

QKV = GemmShape(4096, 3072, 3072, True, "bfloat16")
MODULATION = GemmShape(1, 18432, 3072, True, "bfloat16")
JOINT = AttentionShape(1, 24, 4608, 4608, 128, 128, "bfloat16", layout="bshd")


def flux_like_floor(step_ms=130.0) -> Floor:
    counts = ForwardCounts(
        Counter({QKV: 76, MODULATION: 38, JOINT: 57}),
        memory_bytes=40 * 10**9,
        memory_bytes_eager=200 * 10**9,
        memory_ops=3000,
        forwards=1,
    )
    timings = DeviceTimings({QKV: 0.1, MODULATION: 0.05, JOINT: 0.43}, 4000.0, "test GPU", "sdpa")
    return Floor(counts, timings, step_ms)


def test_floor_is_calls_times_measured_ms_plus_bytes_over_bandwidth():
    floor = flux_like_floor()
    assert floor.category_ms(GEMM) == pytest.approx(76 * 0.1 + 38 * 0.05)
    assert floor.category_ms(ATTENTION) == pytest.approx(57 * 0.43)
    assert floor.category_ms(MEMORY) == pytest.approx(40e9 / 4000e9 * 1e3)  # 10 ms
    assert floor.floor_ms == pytest.approx(9.5 + 24.51 + 10.0)
    assert floor.efficiency == pytest.approx(44.01 / 130.0)
    assert [c.shape for c in floor.costs()] == [JOINT, QKV, MODULATION]  # largest total first
    assert floor.costs()[0].tflops == pytest.approx(JOINT.flops / 0.43e-3 / 1e12)


def test_metrics_are_flat_floor_names():
    metrics = flux_like_floor().metrics()
    assert metrics["floor.ms"] == pytest.approx(44.01)
    assert metrics["floor.efficiency"] == pytest.approx(44.01 / 130.0)
    assert metrics["floor.gemm_tflop"] == pytest.approx((76 * QKV.flops + 38 * MODULATION.flops) / 1e12)
    assert metrics["floor.attention_tflop"] == pytest.approx(57 * JOINT.flops / 1e12)
    assert metrics["floor.memory_gb"] == 40.0 and metrics["floor.memory_gb_eager"] == 200.0
    assert metrics["floor.gemm_calls"] == 114 and metrics["floor.attention_calls"] == 57
    assert all(k.startswith("floor.") for k in metrics)
    counted_only = Floor(flux_like_floor().counts).metrics()
    assert "floor.ms" not in counted_only and "floor.efficiency" not in counted_only
    assert counted_only["floor.gemm_tflop"] == metrics["floor.gemm_tflop"]


def test_floor_json_reads_back_to_the_same_floor():
    floor = flux_like_floor()
    again = Floor.from_dict(json.loads(json.dumps(floor.to_dict())))
    assert again.metrics() == floor.metrics()
    assert again.counts.shapes == floor.counts.shapes


def test_category_gaps_against_a_profiled_runs_categories():
    profiled = {
        "profile.steps": 2.0,
        "profile.cat.gemm_ms": 40.0,
        "profile.cat.attn_ms": 60.0,
        "profile.cat.norm_ms": 10.0,
        "profile.cat.triton_kernel_ms": 20.0,
        "profile.cat.nccl_comm_ms": 100.0,  # not part of one device's floor
        "denoise_step_ms": 130.0,
    }
    run_ms = run_category_ms(profiled)
    assert run_ms == {GEMM: 20.0, ATTENTION: 30.0, MEMORY: 15.0}
    rows = category_rows(flux_like_floor(), run_ms)
    assert [r["category"] for r in rows] == [GEMM, ATTENTION, MEMORY]  # largest gap first
    assert [r["gap_ms"] for r in rows] == pytest.approx([20.0 - 9.5, 30.0 - 24.51, 15.0 - 10.0])
    assert run_category_ms({"denoise_step_ms": 130.0}) is None  # not profiled: no per-category time
    text = markdown(flux_like_floor(), "t", run_ms)
    assert "| gemm | 5.88 TFLOP | 9.50 | 21.6 % | 619 TFLOP/s | 20.00 | 10.50 |" in text


def test_floor_for_is_timed_on_cpu_and_counted_only_on_meta():
    shape = GemmShape(4, 16, 8, True, "float32")
    floor = floor_for(nn.Linear(8, 16), (torch.randn(4, 8),), {}, torch.device("cpu"), calls_per_step=2)
    assert floor.counts.shapes == {shape: 2}
    assert floor.metrics()["floor.transformer_calls"] == 2
    t = floor.timings
    assert t.device.startswith("cpu (") and set(t.host) == {"load_avg_1m_before", "load_avg_1m_after"}
    assert floor.floor_ms == pytest.approx(2 * t.shape_ms[shape] + floor.counts.memory_bytes / (t.copy_gbps * 1e6))

    meta = floor_for(nn.Linear(8, 16, device="meta"), (torch.randn(4, 8, device="meta"),), {}, torch.device("meta"))
    assert meta.counts.shapes == {shape: 1}
    assert meta.timings is None and meta.floor_ms is None and "floor.ms" not in meta.metrics()
