"""The floor issue's H200 figures of 2026-12-02 (docs/results/h200-2026-12-02b.md), re-derived from their raw data:
the paired DiT A/Bs (GELU epilogue, stock against kernels=triton, CUDA graphs), the outputs' agreement, the
step's burst and sustained floors and efficiencies for FLUX.1-dev-size and Wan2.2-TI2V-5B, and the category
tables read from the recorded traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffexp.bench.transformer_ab import paired_summary, sampler_summary
from diffexp.floor.floor import Floor
from diffexp.measure import stats

RECORDED = Path(__file__).parents[2] / "docs" / "results" / "h200-2026-12-02b"


def _ab(name: str) -> dict:
    return json.loads((RECORDED / name / "transformer_ab.json").read_text())


def _floor(run: str) -> tuple[Floor, dict]:
    data = json.loads((RECORDED / run / "floor" / "floor.json").read_text())
    return Floor.from_dict(data), json.loads((RECORDED / run / "metrics.json").read_text())


@pytest.mark.parametrize(
    ("name", "gain_ms", "ci95_ms"),
    [
        ("transformer_ab_epilogue", 2.829, 0.363),
        ("transformer_ab", 4.543, 0.332),
        ("transformer_ab_graphs", 0.787, 0.360),
    ],
)
def test_each_paired_gain_follows_from_its_rounds_and_lies_outside_the_noise(name, gain_ms, ci95_ms):
    result = _ab(name)
    compiled = result["compiled"]
    names = (result["base"], result["candidate"])
    again = paired_summary(compiled[f"{names[0]}_ms"], compiled[f"{names[1]}_ms"], names)
    for key, value in again.items():
        assert compiled[key] == pytest.approx(value), key
    assert (compiled["gain_ms_mean"], compiled["gain_ms_ci95"]) == pytest.approx((gain_ms, ci95_ms), abs=1e-3)
    assert compiled["gain_ms_mean"] - compiled["gain_ms_ci95"] > 0  # a gain beyond the 95 % interval
    # Every pair ran power-capped (clock-event reason 0x4, SW power cap), both sides alike.
    samples = sampler_summary(RECORDED / name / "smi_compiled.csv")
    assert samples.pop("clock_event_reasons") == ["0x0000000000000004"] == compiled["gpu"]["clock_event_reasons"]
    assert samples["power_w_mean"] > 675 and samples["sm_mhz_mean"] < 1650


def test_the_gelu_epilogue_and_the_kernels_agree_with_the_stock_dit_to_bf16_rounding():
    for name in ("transformer_ab_epilogue", "transformer_ab", "transformer_ab_graphs"):
        for phase, found in _ab(name)["agreement"].items():
            assert found["finite"], (name, phase)
            assert found["relative_mean_diff"] < 0.02 and found["max_abs_diff"] < 0.05, (name, phase)
    # Stock against kernels=triton with the epilogue, compiled both: 1.3 % of the mean output, 0.035 at most.
    assert _ab("transformer_ab")["agreement"]["compiled"]["relative_mean_diff"] == pytest.approx(0.0128, abs=1e-4)


def test_the_epilogue_moves_the_gelu_into_the_gemms_in_the_traced_forward():
    from diffexp.profile.analysis import analyze_trace

    def categories(path: str) -> dict:
        return analyze_trace(RECORDED / path).categories.set_index("category")["gpu_ms"].to_dict()

    without = categories("transformer_ab_epilogue/compiled_triton.trace.json.gz")
    with_epilogue = categories("transformer_ab_epilogue/compiled_triton_gelu.trace.json.gz")
    assert without["activation"] > 6.0 and with_epilogue["activation"] < 0.1  # Inductor's GELU kernels gone
    assert with_epilogue["gemm"] - without["gemm"] == pytest.approx(2.75, abs=0.05)  # the epilogue's own cost
    # The single blocks' torch.cat now copies the GEMM's GELU output (Inductor had fused the GELU into it).
    assert with_epilogue["triton_kernel"] - without["triton_kernel"] == pytest.approx(2.44, abs=0.05)
    stock = categories("transformer_ab/compiled_stock.trace.json.gz")
    final = categories("transformer_ab/compiled_triton_gelu.trace.json.gz")
    assert stock["norm"] - final["norm"] > 3.9 and stock["activation"] > 5.3


def test_the_flux_step_is_at_91_6_percent_of_its_burst_floor_and_99_7_of_its_sustained_one():
    floor, metrics = _floor("step")
    assert floor.step_ms == pytest.approx(metrics["denoise_step_median_ms"])
    assert floor.floor_ms == pytest.approx(116.74, abs=0.01)
    assert floor.efficiency == pytest.approx(0.9159, abs=1e-4)
    assert floor.efficiency < 0.92  # the goal, against the burst floor: missed by 0.4 points
    assert floor.sustained.ms == pytest.approx(127.01, abs=0.01)
    assert floor.sustained_efficiency == pytest.approx(0.9965, abs=1e-4)
    # Why the two differ: the shapes alone ran at boost clocks far below the power cap, the synthetic step at it.
    burst, sustained = floor.timings.gpu, floor.sustained.gpu
    assert burst["sm_mhz_mean"] - sustained["sm_mhz_mean"] > 250 and burst["power_w_mean"] < 300
    assert sustained["power_w_mean"] > 680 and sustained["clock_event_reasons"] == ["0x0000000000000004"]
    assert metrics["tags"]["gpu.throttle"] == "power"  # the step itself ran power-capped


def test_the_flux_step_interval_from_its_five_repeats():
    repeats = json.loads((RECORDED / "step" / "repeats.json").read_text())
    logged = json.loads((RECORDED / "step" / "metrics.json").read_text())
    s = stats.summarize([r["denoise_s"] for r in repeats])
    assert len(repeats) == 5 and s.median == pytest.approx(logged["denoise_s"])
    spread = logged["spread"]["denoise_s"]
    assert (s.ci95_low, s.ci95_high) == pytest.approx((spread["ci95_low"], spread["ci95_high"]))
    assert s.median * 0.99 < s.ci95_low and s.ci95_high < s.median * 1.01


def test_wan22_ti2v_720p_is_at_92_2_percent_of_its_burst_floor_with_attention_the_largest_part():
    floor, metrics = _floor("wan22_ti2v")
    assert floor.counts.forwards == 2  # CFG: two transformer calls a step
    assert floor.efficiency == pytest.approx(0.9223, abs=1e-4)
    assert floor.sustained_efficiency == pytest.approx(1.0027, abs=1e-4)  # at the sustained floor, within its noise
    assert floor.category_ms("attention") > floor.category_ms("gemm")
    (attention, *_) = [c for c in floor.costs() if c.shape.category == "attention"]
    assert (attention.shape.q_len, attention.count) == (18480, 60)  # 21 × 22 × 40 latent tokens, 30 layers × 2
    # What ran: 1280×704 (the pipeline's multiple of 32), not the preset's 1280×720, and the run says so.
    assert metrics["tags"]["output.shape"] == "1280x704x81"
    assert "requested 1280x720x81" in metrics["tags"]["output.shape_mismatch"]
