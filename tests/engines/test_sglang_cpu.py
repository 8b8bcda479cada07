"""Real `sglang generate` (0.5.23, CPU platform) on the built-in tiny FLUX, driven by SGLangEngine.

Needs the sglang extra: the CLI on PATH, or $DIFFEXP_SGLANG naming it (e.g. a separate venv's
bin/sglang, since the extra pins its own torch). Each run takes 1-3 minutes on 2 CPU cores.
What works on CPU and what does not is recorded in tests/fixtures/sglang/README.md.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from diffexp.engines import validate
from diffexp.engines.sglang import SGLangEngine

SGLANG = os.environ.get("DIFFEXP_SGLANG") or shutil.which("sglang")

pytestmark = [
    pytest.mark.sglang,
    pytest.mark.slow,
    pytest.mark.skipif(SGLANG is None, reason="sglang CLI not found (install the sglang extra or set DIFFEXP_SGLANG)"),
]

# The tiny FLUX is a local directory SGLang cannot name; --model-id selects the native FLUX pipeline.
TINY_FLUX_ON_CPU = (
    "model=tiny_flux",
    "engine=sglang",
    "engine.device=cpu",
    "engine.backend=sglang",
    "model.sglang_model_id=FLUX.1-dev",
    "engine.timeout_s=900",
)


def run(make_config, *overrides: str):
    cfg = make_config(*TINY_FLUX_ON_CPU, f"engine.executable={SGLANG}", *overrides)
    validate(cfg)
    return SGLangEngine().run(cfg, Path(cfg.output_dir)), Path(cfg.output_dir)


def test_tiny_flux_native_with_request_warmup(make_config):
    result, run_dir = run(make_config, "compile.warmup=true")
    assert result.valid, result.invalid_reason
    assert result.tags["backend"] == "sglang" and result.tags["log_crosscheck"] == "ok"
    assert result.warmup_excluded and result.denoise_s > 0 and len(result.denoise_step_ms) == 4
    assert result.outputs and all(Path(p).is_file() for p in result.outputs)
    assert (run_dir / "perf_dump.json").is_file()


def test_tiny_flux_ulysses2_over_gloo_with_torch_profiler(make_config):
    result, run_dir = run(make_config, "parallel=ulysses2", "profile=torch", "profile.num_steps=2")
    assert result.valid and result.profiled
    assert "traces" in result.artifacts
    assert any(p.name.endswith("global-rank0.trace.json.gz") for p in (run_dir / "traces").iterdir())


def test_without_model_id_sglang_falls_back_and_the_run_is_invalid(make_config):
    result, _ = run(make_config, "model.sglang_model_id=null", "engine.backend=auto")
    assert not result.valid and result.tags["backend_fallback"] == "true"


def test_compile_without_warmup_runs_no_warmup_and_is_not_warmup_excluded(make_config):
    """torch.compile on CPU (Inductor, a C++ compiler on PATH): --warmup-mode off is passed, no warmup request
    runs, and the run is not tagged warmup-excluded; SGLang settled on what was asked."""
    result, run_dir = run(make_config, "compile=on", "compile.warmup=false")
    assert result.valid, result.invalid_reason
    assert not result.warmup_excluded
    assert "--warmup-mode off" in (run_dir / "command.sh").read_text()
    assert result.resolved["warmup_mode"] == "off" and result.resolved["enable_torch_compile"] == "true"
    assert result.resolved["performance_mode"] == "manual" and "resolved.mismatch" not in result.tags
    assert result.tags["sglang.sync_stage_profiling"] == "true"
