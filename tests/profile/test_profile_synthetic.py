"""Scope attribution, steps and idle time on hand-built traces whose answers are known exactly.

Kernel durations are distinct powers of two (µs), so a total identifies exactly which kernels were counted.
"""

from __future__ import annotations

import pytest

from diffexp.errors import DiffexpError
from diffexp.profile import analyze_trace
from diffexp.profile.tables import OUTSIDE_SCOPES

A, B, BARE = 10, 20, 30  # thread ids: A and B have scopes, BARE has none


def to_us(ms: float) -> int:
    value = round(ms * 1000)
    assert value == pytest.approx(ms * 1000, abs=1e-9)
    return value


@pytest.fixture
def nested_trace(trace_builder, tmp_path):
    b = trace_builder
    b.scope("outer", 0, 100, tid=A)
    b.scope("inner1", 10, 40, tid=A)
    b.scope("inner2", 50, 90, tid=A)
    b.scope("leaf", 60, 70, tid=A)
    b.scope("rec", 91, 99, tid=A)
    b.scope("rec", 92, 98, tid=A)
    b.scope("worker", 0, 100, tid=B)
    b.scope("outer", 20, 30, tid=B)
    gpu_us = 1000.0

    def kernel(dur_us: int, **launch) -> None:
        nonlocal gpu_us
        b.kernel(f"kernel_{dur_us}", gpu_us, dur_us, **launch)
        gpu_us += dur_us + 5

    kernel(1, launch_at=5, tid=A)  # outer (exclusive)
    kernel(2, launch_at=10, tid=A)  # inner1: a launch at a scope's start is inside it
    kernel(4, launch_at=40, tid=A)  # outer: a launch at a scope's end is outside it
    kernel(8, launch_at=65, tid=A)  # leaf
    kernel(16, launch_at=75, tid=A)  # inner2 (exclusive)
    kernel(32, launch_at=95, tid=A)  # the inner "rec"
    kernel(64, launch_at=100, tid=A)  # outside: outer has ended
    kernel(128, launch_at=25, tid=B, launch_cat="cuda_driver", launch_name="cuLaunchKernelEx")  # B's outer
    kernel(256, launch_at=50, tid=B)  # worker (exclusive)
    kernel(512, launch_at=50, tid=BARE)  # outside: its thread has no scopes
    kernel(1024)  # outside: no launch in the trace
    kernel(2048, launch_at=15, tid=A, cat="gpu_memset", launch_name="cudaMemsetAsync")  # inner1
    return b.write(tmp_path / "nested.trace.json")


EXPECTED_SCOPES = {
    # scope: (calls, incl_us, excl_us, incl_kernels, excl_kernels)
    "outer": (2, 1 + 2 + 4 + 8 + 16 + 32 + 2048 + 128, 1 + 4 + 128, 8, 3),
    "inner1": (1, 2 + 2048, 2 + 2048, 2, 2),
    "inner2": (1, 8 + 16, 16, 2, 1),
    "leaf": (1, 8, 8, 1, 1),
    "rec": (2, 32, 32, 1, 1),  # the nested "rec" is inside the outer one's total, not added again
    "worker": (1, 256 + 128, 256, 2, 1),
    OUTSIDE_SCOPES: (0, 64 + 512 + 1024, 64 + 512 + 1024, 3, 3),
}


def test_scope_attribution_is_exact(nested_trace):
    analysis = analyze_trace(nested_trace)
    scopes = analysis.scopes.set_index("scope")
    assert set(scopes.index) == set(EXPECTED_SCOPES)
    for scope, (calls, incl_us, excl_us, incl_n, excl_n) in EXPECTED_SCOPES.items():
        row = scopes.loc[scope]
        assert (row["calls"], row["incl_kernels"], row["excl_kernels"]) == (calls, incl_n, excl_n), scope
        assert (to_us(row["incl_gpu_ms"]), to_us(row["excl_gpu_ms"])) == (incl_us, excl_us), scope
    # Every GPU microsecond is owned by exactly one innermost scope or by "outside".
    assert to_us(scopes["excl_gpu_ms"].sum()) == to_us(analysis.gpu_ms) == 4095
    assert to_us(analysis.outside_scopes_ms) == 1600
    assert analysis.unlaunched == 1
    assert scopes.index[0] == "outer"  # sorted by inclusive time


def test_both_parsers_and_gzip_agree_on_attribution(nested_trace, tmp_path):
    import gzip

    packed = tmp_path / "nested.trace.json.gz"
    packed.write_bytes(gzip.compress(nested_trace.read_bytes()))
    reference = analyze_trace(nested_trace, parser="ijson").scopes
    assert analyze_trace(packed, parser="fast").scopes.equals(reference)
    assert analyze_trace(nested_trace, parser="fast").scopes.equals(reference)


def test_kernel_outside_any_scope(trace_builder, tmp_path):
    trace_builder.scope("only", 0, 10)
    trace_builder.kernel("inside", 100, 3, launch_at=5)
    trace_builder.kernel("after", 110, 4, launch_at=20)
    analysis = analyze_trace(trace_builder.write(tmp_path / "t.json"))
    scopes = analysis.scopes.set_index("scope")
    assert to_us(scopes.loc["only", "incl_gpu_ms"]) == 3
    assert to_us(scopes.loc[OUTSIDE_SCOPES, "excl_gpu_ms"]) == 4
    assert scopes.loc[OUTSIDE_SCOPES, "excl_kernels"] == 1
    assert to_us(analysis.outside_scopes_ms) == 4
    assert analysis.steps.empty and analysis.step_pattern is None


def test_idle_time_is_exact_per_device(trace_builder, tmp_path):
    b = trace_builder
    b.kernel("k", 1000, 10, launch_at=1, stream=7)
    b.kernel("k", 1005, 15, launch_at=2, stream=8)  # overlaps the first on another stream
    b.kernel("k", 1030, 10, launch_at=3, stream=7)
    b.kernel("k", 1050, 10, launch_at=4, stream=8)
    b.kernel(
        "Memcpy DtoD (Device -> Device)",
        1060,
        10,
        launch_at=5,
        stream=9,
        cat="gpu_memcpy",
        launch_name="cudaMemcpyAsync",
    )  # touches the previous one: no gap
    b.kernel("k", 2000, 4, launch_at=6, device=1)
    b.kernel("k", 2010, 1, launch_at=7, device=1)
    analysis = analyze_trace(b.write(tmp_path / "t.json"))
    devices = analysis.devices.set_index("device")
    assert list(devices.index) == [0, 1]
    # device 0: window 1000→1070; busy [1000,1020) + [1030,1040) + [1050,1070)
    assert [to_us(devices.loc[0, c]) for c in ("window_ms", "busy_ms", "idle_ms", "gpu_ms")] == [70, 50, 20, 55]
    assert devices.loc[0, "busy_pct"] == pytest.approx(100 * 50 / 70)
    assert (devices.loc[0, "activities"], devices.loc[0, "streams"]) == (5, 3)
    assert [to_us(devices.loc[1, c]) for c in ("window_ms", "busy_ms", "idle_ms", "gpu_ms")] == [11, 5, 6, 5]
    assert (to_us(analysis.busy_ms), to_us(analysis.window_ms), to_us(analysis.idle_ms)) == (55, 81, 26)
    categories = analysis.categories.set_index("category")
    assert to_us(categories.loc["memcpy", "gpu_ms"]) == 10


@pytest.fixture
def stepped(trace_builder):
    b = trace_builder
    b.scope("ProfilerStep#7", 0, 100)
    b.scope("denoising_step_0", 0, 50)
    b.scope("denoising_step_1", 50, 100)
    b.scope("block.attn", 55, 60)
    b.kernel("flash_fwd_kernel", 1000, 2, launch_at=5)
    b.kernel("nvjet_gemm", 1010, 4, launch_at=10)
    b.kernel("flash_fwd_kernel", 1100, 8, launch_at=56)  # inside a nested scope of step 1
    b.kernel("vectorized_elementwise_kernel", 1120, 16, launch_at=70)
    return b


def test_steps_default_to_denoise_scopes_and_include_nested_work(stepped, tmp_path):
    analysis = analyze_trace(stepped.write(tmp_path / "t.json"))
    steps = analysis.steps.set_index("step")
    assert list(steps["scope"]) == ["denoising_step_0", "denoising_step_1"]
    assert [to_us(v) for v in steps["gpu_ms"]] == [2 + 4, 8 + 16]
    assert list(steps["kernels"]) == [2, 2]
    assert [to_us(v) for v in steps["gpu_span_ms"]] == [1014 - 1000, 1136 - 1100]
    assert [to_us(v) for v in steps["cpu_ms"]] == [50, 50]
    per_category = analysis.step_categories.set_index(["step", "category"])["gpu_ms"].map(to_us).to_dict()
    assert per_category == {(0, "attn"): 2, (0, "gemm"): 4, (1, "attn"): 8, (1, "elementwise"): 16}


def test_profiler_steps_are_the_fallback_and_nested_matches_count_once(trace_builder, tmp_path):
    trace_builder.scope("ProfilerStep#3", 0, 100)
    trace_builder.scope("ProfilerStep#4", 100, 200)
    trace_builder.kernel("k", 1000, 2, launch_at=5)
    trace_builder.kernel("k", 1010, 4, launch_at=150)
    analysis = analyze_trace(trace_builder.write(tmp_path / "t.json"))
    assert list(analysis.steps["step"]) == [3, 4]
    assert [to_us(v) for v in analysis.steps["gpu_ms"]] == [2, 4]


def test_a_regex_matching_nested_scopes_takes_the_outermost(stepped, tmp_path):
    analysis = analyze_trace(stepped.write(tmp_path / "t.json"), step_regex=r"(?i)step\D*(\d+)")
    assert list(analysis.steps["scope"]) == ["ProfilerStep#7"]
    assert list(analysis.steps["step"]) == [7]
    assert to_us(analysis.steps["gpu_ms"].iloc[0]) == 30


def test_bad_step_regex_and_traces_without_gpu_work_are_user_errors(trace_builder, tmp_path):
    trace_builder.scope("only", 0, 10)
    path = trace_builder.write(tmp_path / "cpu_only.json")
    with pytest.raises(DiffexpError, match="no GPU kernels"):
        analyze_trace(path)
    with pytest.raises(DiffexpError, match="step regex"):
        analyze_trace(path, step_regex="(unclosed")
    with pytest.raises(DiffexpError, match="does not exist"):
        analyze_trace(tmp_path / "missing.json")


def test_grouped_scopes_fold_numbers_without_double_counting(trace_builder, tmp_path):
    b = trace_builder
    for step in range(2):
        base = 1000 * step
        b.scope(f"denoise_step_{step}", base, base + 1000)
        b.scope(f"transformer_blocks.{step}", base + 100, base + 900)  # block 0 in step 0, block 1 in step 1
        b.scope(f"transformer_blocks.{step}.attn", base + 200, base + 300)
        b.kernel("flash_fwd", 10_000 + 100 * step, 2 << step, launch_at=base + 250)  # 2 then 4 µs
        b.kernel("nvjet", 20_000 + 100 * step, 8 << step, launch_at=base + 400)  # 8 then 16 µs
    b.scope("blk.0", 5000, 5100)
    b.scope("blk.1", 5010, 5090)  # same group nested in itself
    b.kernel("k", 30_000, 32, launch_at=5050)
    analysis = analyze_trace(b.write(tmp_path / "t.json"))
    groups = analysis.scope_groups.set_index("scope")
    attn = groups.loc["transformer_blocks.#.attn"]
    assert (attn["calls"], to_us(attn["incl_gpu_ms"])) == (2, 6)
    assert to_us(groups.loc["transformer_blocks.#", "incl_gpu_ms"]) == 30
    assert to_us(groups.loc["transformer_blocks.#", "excl_gpu_ms"]) == 24
    assert to_us(groups.loc["denoise_step_#", "incl_gpu_ms"]) == 30
    assert (groups.loc["blk.#", "calls"], to_us(groups.loc["blk.#", "incl_gpu_ms"])) == (2, 32)
    per_name = analysis.scopes.set_index("scope")
    assert to_us(per_name.loc["transformer_blocks.1.attn", "incl_gpu_ms"]) == 4
    assert to_us(per_name.loc["blk.0", "incl_gpu_ms"]) == to_us(per_name.loc["blk.1", "incl_gpu_ms"]) == 32
