"""What a profiled run's engine leaves behind (a torch trace, an nsys report) is analysed by the run into
run_dir/profile and metrics (diffexp.profile.of_run); a missing profile keeps the run."""

from __future__ import annotations

import shutil

import pytest

from diffexp.config import compose, to_config
from diffexp.engines.profiling import profile_outputs
from diffexp.profile.of_run import analyze_run_profile
from diffexp.results import RunResult
from tests.conftest import SHARED
from tests.profile.test_nsys import make_export

FIXTURE = SHARED / "fixtures" / "traces" / "flux1dev_dit_eager_h100.trace.json.gz"


@pytest.mark.skipif(not FIXTURE.is_file(), reason="shared trace fixture not present")
def test_torch_trace_written_by_the_engine_is_analysed(tmp_path):
    cfg = to_config(compose(["model=flux1_dev", "profile=torch"]))
    traces = tmp_path / "traces"
    traces.mkdir()
    shutil.copy(FIXTURE, traces / "0f1e-2_steps-global-rank0.trace.json.gz")
    result = RunResult(artifacts=profile_outputs(cfg, traces, tmp_path / "profile_nsys"), profiled=True)
    analyze_run_profile(cfg, result, tmp_path)
    assert result.extra_metrics["profile.gpu_ms"] > 0 and result.extra_metrics["profile.cat.gemm_ms"] > 0
    assert (tmp_path / "profile" / "categories.csv").is_file()
    assert result.artifacts == {"profile": str(tmp_path / "profile")}  # the trace to analyse is consumed


def test_nsys_report_is_broken_down_with_cpu_time(tmp_path):
    cfg = to_config(compose(["model=flux1_dev", "profile=nsys", "profile.unprofiled_elapsed_s=0.05"]))
    report = tmp_path / "profile_nsys"
    # The export that `nsys export --type sqlite` would have written next to the report.
    make_export(report.with_suffix(".sqlite"), kernels=[("nvjet_sm90_tst_192x192", 0, 20_000_000)])
    report.with_suffix(".nsys-rep").write_bytes(b"")
    result = RunResult(artifacts=profile_outputs(cfg, tmp_path / "traces", report), profiled=True)
    analyze_run_profile(cfg, result, tmp_path)
    assert result.extra_metrics["profile.nsys.gemm_s"] == pytest.approx(0.02)
    assert result.extra_metrics["profile.nsys.CPU_non-GPU_s"] == pytest.approx(0.03)
    assert (tmp_path / "profile" / "nsys_categories.md").is_file()


def test_missing_profile_output_keeps_the_run(tmp_path):
    cfg = to_config(compose(["model=flux1_dev", "profile=torch"]))
    (tmp_path / "traces").mkdir()
    result = RunResult(artifacts=profile_outputs(cfg, tmp_path / "traces", tmp_path / "p"), profiled=True)
    analyze_run_profile(cfg, result, tmp_path)
    assert result.extra_metrics == {} and not (tmp_path / "profile").exists()
