"""write_report as the rest of the package calls it, and the benchmark's synthetic trace generator."""

from __future__ import annotations

import pandas as pd
import pytest

from diffexp.bench.trace_reader import generate_trace
from diffexp.profile import analyze_trace, compare_traces, write_report


def test_write_report_returns_every_file_it_wrote(fixture_analysis, tmp_path):
    written = write_report(fixture_analysis, tmp_path / "run" / "profile", top=3)
    assert all(path.is_file() for path in written)
    assert sorted(p.name for p in (tmp_path / "run" / "profile").iterdir()) == sorted(p.name for p in written)
    kernels = pd.read_csv(tmp_path / "run" / "profile" / "kernels.csv")
    assert len(kernels) == len(fixture_analysis.kernels)  # CSVs are complete; --top only trims the summaries


def test_write_report_of_a_comparison(fixture_analysis, tmp_path):
    written = write_report(compare_traces(fixture_analysis, fixture_analysis), tmp_path)
    names = {str(p.relative_to(tmp_path)) for p in written}
    assert {"categories_delta.csv", "comparison.html", "before/profile.md", "after/summary.json"} <= names
    assert all(path.is_file() for path in written)


def test_generated_benchmark_trace_is_the_fixture_repeated(fixture_trace, fixture_analysis, tmp_path):
    path = tmp_path / "synthetic.trace.json"
    written = generate_trace(path, size_mb=20, fixture=fixture_trace)  # the fixture is 14.9 MB raw: two copies
    assert written == path.stat().st_size > 20e6
    analysis = analyze_trace(path)
    assert analysis.read.parser == "fast"
    assert analysis.kernels["count"].sum() == 2 * fixture_analysis.kernels["count"].sum()
    assert list(analysis.steps["step"]) == [0, 1, 2, 3]
    assert analysis.steps["gpu_ms"].tolist() == pytest.approx(2 * fixture_analysis.steps["gpu_ms"].tolist())
    gemm = analysis.categories.set_index("category").loc["gemm", "gpu_ms"]
    assert gemm == pytest.approx(2 * fixture_analysis.categories.set_index("category").loc["gemm", "gpu_ms"])
    assert analysis.unlaunched == 0 and analysis.outside_scopes_ms == 0.0
