"""`python -m diffexp.profile` end to end in a subprocess: tables printed, CSV/markdown/HTML written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "diffexp.profile", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_one_trace_prints_tables_and_writes_the_report(fixture_trace, tmp_path):
    out = tmp_path / "report"
    result = run_cli(str(fixture_trace), "--out", str(out), "--top", "5")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "GPU time by category" in result.stdout and "Top 5 kernels" in result.stdout
    assert "denoising_step_1" in result.stdout
    expected = {
        "kernels.csv",
        "categories.csv",
        "scopes.csv",
        "steps.csv",
        "step_categories.csv",
        "devices.csv",
        "summary.json",
        "profile.md",
        "profile.html",
    }
    assert expected <= {p.name for p in out.iterdir()}
    steps = pd.read_csv(out / "steps.csv")
    assert list(steps["step"]) == [0, 1] and (steps["kernels"] == 3156).all()
    assert pd.read_csv(out / "categories.csv")["category"].iloc[0] == "gemm"
    assert json.loads((out / "summary.json").read_text())["profile.steps"] == 2.0
    markdown = (out / "profile.md").read_text()
    assert "## GPU time by category" in markdown and "| `nvjet_sm90_tst_192x192" in markdown
    page = (out / "profile.html").read_text()
    assert page.count("Plotly.newPlot") == 4  # categories, top kernels, step timeline, steps by category
    assert "GPU time by category" in page and "Per-step timeline" in page


def test_two_traces_write_the_comparison(trace_builder_factory, tmp_path):
    paths = []
    for label, gemm_us in (("before", 400), ("after", 300)):
        builder = trace_builder_factory()
        builder.scope("denoise_step_0", 0, 100)
        builder.kernel("nvjet_gemm", 1000, gemm_us, launch_at=5)
        builder.kernel("flash_fwd", 2000, 100, launch_at=6)
        paths.append(builder.write(tmp_path / f"{label}.trace.json"))
    out = tmp_path / "compare"
    result = run_cli(str(paths[0]), str(paths[1]), "--out", str(out), "--step-regex", r"denoise_step_(\d+)")
    assert result.returncode == 0, result.stderr + result.stdout
    deltas = pd.read_csv(out / "categories_delta.csv").set_index("category")
    assert deltas.loc["gemm", ["delta_ms", "delta_pct"]].tolist() == pytest.approx([-0.1, -25.0])
    for name in (
        "kernels_delta.csv",
        "totals_delta.csv",
        "comparison.md",
        "comparison.html",
        "before/profile.html",
        "after/kernels.csv",
    ):
        assert (out / name).is_file(), name
    assert "By category" in result.stdout


def test_errors_are_reported_without_a_traceback(tmp_path):
    result = run_cli(str(tmp_path / "missing.trace.json.gz"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "does not exist" in result.stdout and "Traceback" not in result.stdout + result.stderr
    bad_categories = tmp_path / "bad.yaml"
    bad_categories.write_text("rules: []\n")
    result = run_cli(str(tmp_path / "x.json"), "--categories", str(bad_categories))
    assert result.returncode == 2 and "rules" in result.stdout
