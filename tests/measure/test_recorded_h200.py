"""The measurement-trust figures recorded on an H200 on 2026-12-02 (docs/results/h200-2026-12-02.md), re-derived
from their raw data: real NVML samples through the throttle logic, the within- and between-process intervals of
the FLUX.1-dev-size DiT, the paired kernels A/B's verdict and the run's compute-floor efficiency."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import median

import pytest

from diffexp.compare.noise import verdict
from diffexp.measure import stats
from diffexp.measure.gpu import REASON_BITS, read_samples, summarize_samples

RECORD = Path(__file__).resolve().parents[2] / "docs" / "results" / "h200-2026-12-02"


def _json(*parts: str):
    return json.loads(RECORD.joinpath(*parts).read_text())


@pytest.fixture(scope="module")
def nvml():
    phases = _json("nvml", "phases.json")
    samples = read_samples(RECORD / "nvml" / "nvml_samples.csv")
    idle = [s for s in samples if s.t_s < phases["load_start_s"]]
    loaded = [s for s in samples if phases["load_start_s"] <= s.t_s <= phases["load_end_s"]]
    return samples, idle, loaded


def test_real_samples_of_matmuls_at_the_power_limit_are_tagged_power_throttled(nvml):
    samples, idle, loaded = nvml
    metrics, tags = summarize_samples(loaded, other_procs_mib=0.0)
    assert tags == {"gpu.throttle": "power", "gpu.clocks_fell": "true", "gpu.throttled": "true"}
    assert metrics["gpu.power_limit_w"] == 700.0 and metrics["gpu.power_w_max"] > 0.95 * 700.0
    # the software power cap held the SM clock far below its 1980 MHz maximum for nearly the whole load
    capped = [s for s in loaded if s.reasons & REASON_BITS["sw_power_cap"]]
    assert len(capped) > 0.9 * len(loaded) and max(s.sm_mhz for s in capped) < 1980.0
    # the recording's own summary is what the logic gives today
    recorded = _json("nvml", "nvml_summary.json")["loaded"]
    assert tags == recorded["tags"] and metrics == pytest.approx(recorded["metrics"])


def test_real_idle_samples_are_not_throttled(nvml):
    _, idle, _ = nvml
    metrics, tags = summarize_samples(idle)
    assert tags["gpu.throttled"] == "false" and metrics["gpu.util_pct_mean"] == 0.0
    assert metrics["gpu.samples"] == len(idle) >= 50  # 3 s at 20 Hz


def _replicate(i: int) -> tuple[list[float], dict]:
    repeats = _json("replicates", str(i), "repeats.json")
    return [r["denoise_s"] for r in repeats], _json("replicates", str(i), "metrics.json")


@pytest.mark.parametrize("i", [0, 1, 2])
def test_one_process_with_the_default_five_repeats_has_an_interval_within_one_percent(i):
    """The measurement-trust goal: the 95 % interval of the denoise median narrower than ±1 % with the defaults."""
    denoise, logged = _replicate(i)
    assert len(denoise) == 5  # measure.repeats' GPU default
    s = stats.summarize(denoise)
    assert s.median == pytest.approx(logged["denoise_s"])
    assert (s.ci95_low, s.ci95_high) == pytest.approx(
        (logged["spread"]["denoise_s"]["ci95_low"], logged["spread"]["denoise_s"]["ci95_high"])
    )
    assert s.median * 0.99 < s.ci95_low <= s.median <= s.ci95_high < s.median * 1.01


def test_between_process_spread_is_the_three_medians_and_stays_under_one_percent():
    medians = [_replicate(i)[1]["denoise_s"] for i in range(3)]
    parent = _json("replicates", "metrics.json")
    between = stats.summarize(medians)
    assert parent["denoise_s"] == pytest.approx(between.median)
    assert parent["spread"]["denoise_s"]["ci95_high"] == pytest.approx(between.ci95_high)
    assert (max(medians) - min(medians)) / between.median < 0.01
    within = stats.summarize([d for i in range(3) for d in _replicate(i)[0]])
    assert parent["spread"]["denoise_s.within"]["n"] == within.n == 15


def test_kernels_ab_verdict_follows_from_its_rounds():
    ab = _json("ab_kernels", "ab.json")
    base = [_json("ab_kernels", f"round{r}", "base", "metrics.json")["denoise_s"] for r in range(3)]
    cand = [_json("ab_kernels", f"round{r}", "candidate", "metrics.json")["denoise_s"] for r in range(3)]
    assert [r["base"] for r in ab["rounds"]] == pytest.approx(base)
    v = verdict(base, cand, "denoise_s", ab["min_effect_pct"], paired=True)
    assert (v.delta.pct, v.delta.ci95_low_pct, v.delta.ci95_high_pct) == pytest.approx(
        (ab["delta_pct"], ab["ci95_low_pct"], ab["ci95_high_pct"])
    )
    # every round faster by about 2 %, an interval that straddles the 2 % minimum effect: "ambiguous", not "faster"
    assert all(c < b for b, c in zip(base, cand)) and v.verdict == ab["verdict"] == "ambiguous"
    assert ab["ci95_low_pct"] < -ab["min_effect_pct"] < ab["ci95_high_pct"] < 0


def test_floor_efficiency_is_the_floor_over_the_measured_median_step():
    extra = _json("replicates", "metrics.json")["extra_metrics"]
    floor_ms = extra["floor.gemm_ms"] + extra["floor.attention_ms"] + extra["floor.memory_ms"]
    assert floor_ms == pytest.approx(extra["floor.ms"])
    assert extra["floor.step_ms"] == pytest.approx(_json("replicates", "metrics.json")["denoise_step_median_ms"])
    assert extra["floor.efficiency"] == pytest.approx(floor_ms / extra["floor.step_ms"])
    triton_step_ms = median(
        _json("ab_kernels", f"round{r}", "candidate", "metrics.json")["denoise_step_median_ms"] for r in range(3)
    )
    assert 0.90 < floor_ms / triton_step_ms < 0.92  # kernels=triton: 91 %, short of the floor issue's 92 %


def test_the_gelu_epilogue_candidate_saves_about_five_ms_a_flux_step():
    """The recorded per-call times of the candidates benchmark, summed over FLUX.1-dev's MLPs (counted from its arch
    YAML): what the floor document states the epilogue would save per step."""
    import yaml

    arch = yaml.safe_load((RECORD.parents[2] / "conf" / "arch" / "flux1_dev.yaml").read_text())
    dit = arch["components"]["transformer"]["config"]
    rows = {r["where"].split()[0]: r for r in _json("candidates.json")["gelu"]}
    for r in rows.values():
        assert r["epilogue_gain_ms"] == pytest.approx(r["compiled_ms"] - r["cublaslt_epilogue_ms"])
        assert r["gemm_only_ms"] < r["cublaslt_epilogue_ms"] < r["compiled_ms"]
    per_step = dit["num_layers"] * (rows["image"]["epilogue_gain_ms"] + rows["text"]["epilogue_gain_ms"])
    per_step += dit["num_single_layers"] * rows["joint"]["epilogue_gain_ms"]
    assert 4.5 < per_step < 5.3
    attention = {r["where"]: r for r in _json("candidates.json")["attention"]}
    assert all(r["fastest"] == "cudnn" for r in attention.values())
