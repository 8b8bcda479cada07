"""Perf dump and log parsing on real recorded SGLang 0.5.23 runs (tests/fixtures/sglang/, see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffexp.engines.sglang import harvest, perf_dump
from diffexp.errors import DiffexpError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sglang"


def load(case: str):
    folder = FIXTURES / case
    dump = perf_dump.read_perf_dump(folder / "perf_dump.json") if (folder / "perf_dump.json").is_file() else None
    return dump, harvest.parse_log((folder / "sglang.log").read_text()), folder


def raw(case: str) -> dict:
    return json.loads((FIXTURES / case / "perf_dump.json").read_text())


def test_native_dump_gives_stages_steps_and_denoise_total():
    dump, log, _ = load("cpu_flux_native")
    data = raw("cpu_flux_native")
    result = harvest.build_result(dump, log)
    stages = {s["name"]: s["duration_ms"] / 1000 for s in data["steps"]}
    assert result.stages_s == pytest.approx(stages)
    assert result.denoise_s == pytest.approx(stages["DenoisingStage"])
    assert result.text_encode_s == pytest.approx(stages["TextEncodingStage"])
    assert result.vae_decode_s == pytest.approx(stages["DecodingStage"])
    assert result.denoise_step_ms == [s["duration_ms"] for s in data["denoise_steps_ms"]]
    assert len(result.denoise_step_ms) == 4
    assert result.e2e_s == pytest.approx(data["total_duration_ms"] / 1000)
    assert result.valid and result.tags["backend"] == "sglang"
    # The log's "[DenoisingStage] finished in …" line agrees with the dump.
    assert result.tags["log_crosscheck"] == "ok"
    assert result.extra_metrics["log.denoise_s"] == pytest.approx(result.denoise_s, abs=1e-3)
    # CPU run: no device memory was sampled, so no memory figure is invented.
    assert result.peak_mem_gib is None and not result.peak_mem_gib_per_device


def test_warmup_excluded_figure_is_read_and_cross_checked():
    dump, log, _ = load("cpu_flux_warmup")
    assert log.warmup_excluded_s == 0.07
    result = harvest.build_result(dump, log)
    assert result.warmup_excluded
    assert result.extra_metrics["log.warmup_excluded_s"] == 0.07
    assert result.tags["log_crosscheck"] == "ok"  # dump total 70.29 ms vs log 0.07 s


def test_log_alone_is_the_fallback_when_no_dump_was_written():
    _, log, _ = load("cpu_flux_warmup")
    dump, _, _ = load("cpu_flux_warmup")
    result = harvest.build_result(None, log)
    assert result.tags["figures_from"] == "log"
    assert result.denoise_s == pytest.approx(dump.stages_ms["DenoisingStage"] / 1000, abs=1e-3)
    assert result.e2e_s == 0.07
    assert set(result.stages_s) == {
        "InputValidationStage",
        "TextEncodingStage",
        "LatentPreparationStage",
        "TimestepPreparationStage",
        "DenoisingStage",
        "DecodingStage",
    }
    assert result.valid


def test_ulysses_run_on_two_cpu_ranks_parses_like_any_other():
    dump, log, _ = load("cpu_flux_ulysses2")
    result = harvest.build_result(dump, log)
    assert result.valid and result.denoise_s > 0 and len(result.denoise_step_ms) == 4


def test_fallback_to_diffusers_makes_the_run_invalid():
    dump, log, _ = load("cpu_flux_auto_fallback")
    assert any("Falling back to diffusers backend" in line for line in log.fallback_lines)
    result = harvest.build_result(dump, log)
    assert not result.valid
    assert "fell back to the diffusers backend" in result.invalid_reason
    assert result.tags["backend_fallback"] == "true"
    # The diffusers path reports one opaque stage and no per-step times.
    assert "DiffusersExecutionStage" in result.stages_s and result.denoise_step_ms == []


def test_explicit_diffusers_baseline_stays_valid_and_is_tagged():
    dump, log, _ = load("cpu_flux_diffusers_baseline")
    assert any("explicitly requested" in line for line in log.fallback_lines)
    result = harvest.build_result(dump, log, diffusers_baseline=True)
    assert result.valid and result.tags["backend"] == "diffusers-baseline"
    assert "backend_fallback" not in result.tags
    # The same log without the explicit request is a fallback, i.e. not an SGLang number.
    assert not harvest.build_result(dump, log).valid


def test_cfg_parallel_run_on_two_cpu_ranks_parses():
    dump, log, _ = load("cpu_flux_cfg2")
    result = harvest.build_result(dump, log)
    assert result.valid and len(result.denoise_step_ms) == 4 and result.tags["log_crosscheck"] == "ok"


@pytest.mark.parametrize("case", ["cpu_flux_profile", "diffexp_tiny_flux_ulysses2_profile"])
def test_profiled_run_reports_its_trace(case):
    dump, log, folder = load(case)
    [trace] = log.traces
    assert trace.endswith("-2_steps-global-rank0.trace.json.gz")
    assert harvest.build_result(dump, log, profiled=True).profiled


def test_runs_recorded_through_diffexp_parse_and_cross_check():
    for case in ("diffexp_tiny_flux_warmup", "diffexp_tiny_flux_ulysses2_profile"):
        dump, log, folder = load(case)
        result = harvest.build_result(dump, log)
        assert result.valid and result.tags["log_crosscheck"] == "ok", case
        assert "--perf-dump-path" in (folder / "command.sh").read_text()
    assert next((FIXTURES / "diffexp_tiny_flux_ulysses2_profile" / "traces").glob("*.trace.json.gz")).stat().st_size > 0


def test_guide_warmup_flag_is_rejected_by_0_5_23():
    """Why diffexp writes --warmup-mode request: the guides' --warmup is an argparse error in 0.5.23."""
    text = (FIXTURES / "cpu_guide_warmup_flag_rejected" / "sglang.log").read_text()
    assert "error: ambiguous option: --warmup could match --warmup-mode" in text


def test_failed_request_is_found_in_a_log_that_exited_zero():
    _, log, _ = load("cpu_wan_failure")
    assert log.failure_lines and "fused_norm_scale_shift_cpu" in log.failure_lines[-1]


def test_saved_outputs_and_metrics_lines_are_read():
    _, log, folder = load("cpu_flux_native")
    [saved] = log.saved_outputs
    assert Path(saved) == Path("/tmp/sglcpu/flux2/outputs/a_cat_20261123-162449_62e2a585.png")
    assert f"--output-path {Path(saved).parent} " in (folder / "command.txt").read_text()


def test_denoise_stage_rule_matches_sglang_benchmark_skill():
    assert perf_dump.is_denoise_stage("DenoisingStage")
    assert perf_dump.is_denoise_stage("Hunyuan3DShapeDenoisingStage")
    assert perf_dump.is_denoise_stage("LTX2RefinementStage")
    assert not perf_dump.is_denoise_stage("QwenImageLayeredBeforeDenoisingStage")
    assert not perf_dump.is_denoise_stage("DecodingStage")


def test_residency_advice_is_extracted():
    # The 0.5.23 wording (gpu_worker.do_mem_analysis) and the guide's wording.
    lines = [
        "[11-23 16:24:50] GPU memory: peak=30.10 GB, allocated=28.00 GB, pool=2.10 GB (7.0%), headroom=49.90 GB. "
        "Components that can remain on GPU: ['text_encoder', 'vae']. Make it explicit with --component-residency <name>=resident."
    ]
    assert harvest.residency_advice(lines) == "['text_encoder', 'vae']"


def test_not_a_perf_dump_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(DiffexpError, match="not an SGLang perf dump"):
        perf_dump.read_perf_dump(bad)


def test_log_cross_check_agrees_on_a_real_run_and_flags_a_disagreement():
    from dataclasses import replace

    from diffexp.engines.sglang import harvest

    folder = Path(__file__).resolve().parents[1] / "fixtures" / "sglang" / "cpu_flux_warmup"
    dump = perf_dump.read_perf_dump(folder / "perf_dump.json")
    log = harvest.parse_log((folder / "sglang.log").read_text())
    assert harvest.build_result(dump, log).tags["log_crosscheck"] == "ok"
    slower = replace(log, warmup_excluded_s=(log.warmup_excluded_s or 0) * 1.5 + 0.1)
    assert harvest.build_result(dump, slower).tags["log_crosscheck"].startswith("mismatch: e2e")
