"""What a profiled run's engine leaves behind (a torch trace, an nsys report) is analysed by the run into
run_dir/profile and metrics (diffexp.profile.of_run); a missing profile keeps the run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from diffexp.config import compose, to_config
from diffexp.engines.profiling import profile_outputs
from diffexp.profile.of_run import analyze_run_profile
from diffexp.results import RunResult
from tests.conftest import REPO, SHARED, as_on_a_gpu_box
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


# A GPU box has no plotly (nor MLflow): on the H200 on 2026-12-02 every profiled run failed after writing its trace,
# because the trace reader's report imported plotly for its charts.
def without_plotly(module: str, *args: str, cwd) -> subprocess.CompletedProcess:
    env = as_on_a_gpu_box({**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}, Path(cwd))
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_profiled_run_without_plotly_finishes_and_reaches_the_analysis(tmp_path):
    run_dir = tmp_path / "run"
    without_plotly("diffexp", "tracking.enabled=false", "profile=torch", "profile.num_steps=2",
                   f"hydra.run.dir={run_dir}", cwd=tmp_path)  # fmt: skip
    assert json.loads((run_dir / "metrics.json").read_text())["denoise_s"] > 0
    assert list((run_dir / "traces").glob("*.trace.json.gz"))
    # A CPU trace has no GPU kernels: the analysis ran and says so (on a GPU it writes run_dir/profile).
    assert "GPU-time analysis skipped" in (run_dir / "run.log").read_text()


@pytest.mark.skipif(not FIXTURE.is_file(), reason="shared trace fixture not present")
def test_trace_read_without_plotly_writes_every_table_and_a_page_without_charts(tmp_path):
    without_plotly("diffexp.profile", str(FIXTURE), "--out", str(tmp_path / "report"), cwd=tmp_path)
    categories = pd.read_csv(tmp_path / "report" / "categories.csv")
    assert "gemm" in set(categories["category"])
    assert (tmp_path / "report" / "profile.md").read_text().count("|") > 10
    page = (tmp_path / "report" / "profile.html").read_text()
    assert "No charts" in page and "<h2>Tables</h2>" in page and "plotly" not in page.split("No charts")[0]
