"""The floor issue's last H200 figures (2026-12-02, third session; docs/results/h200-2026-12-02c.md), re-derived
from their raw data: the single blocks' proj_out without its cat against the GELU epilogue alone (paired DiT
forwards), the outputs' agreement with the stock DiT, the trace that shows the cat's copy gone, and the compiled
FLUX step with both at 96.1 % of its burst floor (the goal: 92 %)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffexp.bench.transformer_ab import paired_summary, sampler_summary
from diffexp.floor.floor import Floor
from diffexp.measure import stats

RECORDED = Path(__file__).parents[2] / "docs" / "results" / "h200-2026-12-02c"
SPLIT = RECORDED / "transformer_ab_split"


def _ab() -> dict:
    return json.loads((SPLIT / "transformer_ab.json").read_text())


def test_the_split_gains_beyond_the_noise_in_100_paired_compiled_forwards():
    result = _ab()
    assert (result["base"], result["candidate"]) == ("triton_gelu", "triton_gelu_split")
    compiled = result["compiled"]
    again = paired_summary(
        compiled["triton_gelu_ms"], compiled["triton_gelu_split_ms"], ("triton_gelu", "triton_gelu_split")
    )
    for key, value in again.items():
        assert compiled[key] == pytest.approx(value), key
    assert compiled["rounds"] == 100
    assert (compiled["gain_ms_mean"], compiled["gain_ms_ci95"]) == pytest.approx((1.873, 0.403), abs=1e-3)
    assert compiled["gain_ms_mean"] - compiled["gain_ms_ci95"] > 1.4  # [1.47, 2.28] ms: kept, on with kernels=triton
    assert compiled["triton_gelu_split_faster_in_pct_of_rounds"] == 81.0
    samples = sampler_summary(SPLIT / "smi_compiled.csv")  # both sides power-capped alike
    assert samples.pop("clock_event_reasons") == ["0x0000000000000004"] == compiled["gpu"]["clock_event_reasons"]
    assert any("proj_out(cat([attn, mlp])) -> a GEMM per part, no cat (x38)" in p for p in result["patched"])
    assert not any("proj_out" in p for p in result["patched_base"])


def test_the_split_agrees_with_the_stock_dit_to_bf16_rounding():
    agreement = _ab()["agreement"]
    for phase, found in agreement.items():
        assert found["finite"] and found["relative_mean_diff"] < 0.01 and found["max_abs_diff"] < 0.03, phase
    # Against the stock compiled DiT: as far off as the epilogue alone was (0.70 % eager), no further.
    assert agreement["compiled_vs_stock"]["relative_mean_diff"] == pytest.approx(0.00749, abs=1e-5)


def test_the_traced_forward_loses_the_cat_copy_for_a_second_gemm_pass():
    from diffexp.profile.analysis import analyze_trace

    def categories(name: str) -> dict:
        return analyze_trace(SPLIT / f"compiled_{name}.trace.json.gz").categories.set_index("category")["gpu_ms"]

    base, split = categories("triton_gelu"), categories("triton_gelu_split")
    assert base["triton_kernel"] - split["triton_kernel"] == pytest.approx(2.44, abs=0.02)  # the cat's copy, gone
    assert split["gemm"] - base["gemm"] == pytest.approx(1.74, abs=0.02)  # the second GEMM's pass over the output


def test_the_flux_step_with_both_is_at_96_percent_of_its_burst_floor():
    floor = Floor.from_dict(json.loads((RECORDED / "step" / "floor" / "floor.json").read_text()))
    metrics = json.loads((RECORDED / "step" / "metrics.json").read_text())
    config = (RECORDED / "step" / "config.yaml").read_text()
    assert "gelu_epilogue: true" in config and "split_proj_out: true" in config and "impl: triton" in config
    assert floor.step_ms == pytest.approx(metrics["denoise_step_median_ms"]) == pytest.approx(123.25, abs=0.01)
    assert floor.floor_ms == pytest.approx(118.50, abs=0.01)
    assert floor.efficiency == pytest.approx(0.9615, abs=1e-4) and floor.efficiency >= 0.92  # the goal, met
    # The suite's stock FLUX run minutes later measured its floor at 114.45 ms: against that one too the step
    # is over 92 %.
    suite = json.loads((RECORDED / "suite" / "flux1_dev" / "metrics.json").read_text())["extra_metrics"]
    assert suite["floor.ms"] / floor.step_ms == pytest.approx(0.9286, abs=1e-4)
    assert floor.sustained.ms == pytest.approx(126.06, abs=0.01) and floor.sustained_efficiency > 1.0
    assert metrics["tags"]["gpu.throttle"] == "power"
    repeats = json.loads((RECORDED / "step" / "repeats.json").read_text())
    s = stats.summarize([r["denoise_s"] for r in repeats])
    spread = metrics["spread"]["denoise_s"]
    assert len(repeats) == 5 and s.median == pytest.approx(metrics["denoise_s"])
    assert (s.ci95_low, s.ci95_high) == pytest.approx((spread["ci95_low"], spread["ci95_high"]))
