"""compare_traces: before/after/delta by category, kernel and totals."""

from __future__ import annotations

import math

import pytest

from diffexp.profile import analyze_trace, compare_traces


def build(builder, kernels, path):
    """kernels: (name, dur_us) launched one after another inside denoise_step_0."""
    builder.scope("denoise_step_0", 0, 1000)
    start = 10_000.0
    for index, (name, dur_us) in enumerate(kernels):
        builder.kernel(name, start, dur_us, launch_at=1 + index)
        start += dur_us + 10
    return builder.write(path)


@pytest.fixture
def before_after(tmp_path, trace_builder_factory):
    before_kernels = [("nvjet_a", 400), ("nvjet_a", 400), ("flash_fwd", 200), ("old_kernel", 50)]
    after_kernels = [("nvjet_a", 300), ("nvjet_a", 300), ("flash_fwd", 200), ("triton_new", 25)]
    before = build(trace_builder_factory(), before_kernels, tmp_path / "before.json")
    after = build(trace_builder_factory(), after_kernels, tmp_path / "after.json")
    return analyze_trace(before), analyze_trace(after)


def test_category_deltas(before_after):
    comparison = compare_traces(*before_after)
    table = comparison.categories.set_index("category")
    assert table.loc["gemm", ["before_ms", "after_ms", "delta_ms"]].tolist() == pytest.approx([0.8, 0.6, -0.2])
    assert table.loc["gemm", "delta_pct"] == pytest.approx(-25.0)
    assert table.loc["attn", ["delta_ms", "delta_pct"]].tolist() == pytest.approx([0.0, 0.0])
    assert table.loc["misc", ["before_ms", "after_ms", "delta_pct"]].tolist() == pytest.approx([0.05, 0.0, -100.0])
    assert table.loc["triton_kernel", ["before_ms", "after_ms"]].tolist() == pytest.approx([0.0, 0.025])
    assert math.isnan(table.loc["triton_kernel", "delta_pct"])  # new in after: no relative change
    assert list(comparison.categories["category"])[:2] == ["gemm", "attn"]  # largest first


def test_kernel_and_total_deltas(before_after):
    comparison = compare_traces(*before_after)
    kernels = comparison.kernels.set_index("name")
    assert kernels.loc["nvjet_a", ["before_count", "after_count"]].tolist() == [2, 2]
    assert kernels.loc["nvjet_a", "delta_ms"] == pytest.approx(-0.2)
    assert kernels.loc["old_kernel", ["after_ms", "after_count", "delta_pct"]].tolist() == pytest.approx([0, 0, -100])
    assert kernels.loc["triton_new", ["before_count", "after_count"]].tolist() == [0, 1]
    totals = comparison.totals.set_index("metric")
    assert totals.loc["gpu_ms", ["before_ms", "after_ms", "delta_ms"]].tolist() == pytest.approx([1.05, 0.825, -0.225])
    assert totals.loc["step_gpu_ms_mean", "delta_ms"] == pytest.approx(-0.225)


def test_comparing_a_trace_with_itself_gives_zero_deltas(fixture_trace, fixture_analysis):
    comparison = compare_traces(fixture_analysis, fixture_trace)  # a path is analysed on the way
    assert (comparison.categories["delta_ms"] == 0).all()
    assert (comparison.kernels["delta_ms"] == 0).all()
    assert len(comparison.kernels) == len(fixture_analysis.kernels)
