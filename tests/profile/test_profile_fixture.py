"""The analyzer on a real H100 trace, against figures computed here straight from the raw events."""

from __future__ import annotations

import collections
import re

import pytest
import yaml

from diffexp.profile import analyze_trace, summary_metrics
from diffexp.profile.categories import DEFAULT_CATEGORIES_PATH
from diffexp.profile.reader import read_trace

GPU_CATS = ("kernel", "gpu_memcpy", "gpu_memset")


def gpu_events(events):
    return [e for e in events if e.get("ph") == "X" and e.get("cat") in GPU_CATS]


def reference_category(name: str, cat: str, rules: list[dict]) -> str:
    for rule in rules:
        if cat in rule.get("trace_categories", []) or ("pattern" in rule and re.search(rule["pattern"], name)):
            return rule["category"]
    return "misc"


def test_category_totals_match_raw_events(fixture_events, fixture_analysis):
    rules = yaml.safe_load(DEFAULT_CATEGORIES_PATH.read_text())["rules"]
    expected_us = collections.Counter()
    expected_n = collections.Counter()
    for event in gpu_events(fixture_events):
        category = reference_category(event["name"], event["cat"], rules)
        expected_us[category] += event["dur"]
        expected_n[category] += 1
    got = fixture_analysis.categories.set_index("category")
    assert set(got.index) == set(expected_us)
    for category, total_us in expected_us.items():
        assert got.loc[category, "gpu_ms"] == pytest.approx(total_us / 1000, rel=1e-12)
        assert got.loc[category, "count"] == expected_n[category]
    assert got["share_pct"].sum() == pytest.approx(100.0)
    # What the numbers should say about an eager FLUX.1-dev DiT step on an H100.
    assert got.index[0] == "gemm"
    assert 0.40 < got.loc["gemm", "gpu_ms"] / fixture_analysis.gpu_ms < 0.50
    assert got.loc["attn", "count"] == 114  # one cuDNN SDPA flash kernel per attention call


def test_default_map_classifies_every_fixture_kernel_sensibly(fixture_events, fixture_analysis):
    category_of = dict(zip(fixture_analysis.kernels["name"], fixture_analysis.kernels["category"], strict=True))
    assert "misc" not in category_of.values()
    for name, category in category_of.items():
        if name.startswith("nvjet_") or "splitKreduce" in name:
            assert category == "gemm", name
        elif "GeluCUDAKernelImpl" in name or "silu_kernel" in name:
            assert category == "activation", name
        elif "layer_norm" in name:
            assert category == "norm", name
        elif "sdpa" in name and "flash" in name:
            assert category == "attn", name
        elif name.startswith("Memset"):
            assert category == "memcpy", name
        else:
            assert category == "elementwise", name


def test_top_kernels_match_raw_events(fixture_events, fixture_analysis):
    total = collections.Counter()
    count = collections.Counter()
    for event in gpu_events(fixture_events):
        total[event["name"]] += event["dur"]
        count[event["name"]] += 1
    expected = total.most_common(10)
    got = fixture_analysis.kernels.head(10)
    assert list(got["name"]) == [name for name, _ in expected]
    assert list(got["total_ms"]) == pytest.approx([us / 1000 for _, us in expected], rel=1e-12)
    assert list(got["count"]) == [count[name] for name, _ in expected]
    assert got.iloc[0]["name"] == "nvjet_sm90_tst_192x192_64x4_2x1_v_bz_coopB_bias_TNN"
    assert got.iloc[0]["mean_us"] == pytest.approx(expected[0][1] / count[expected[0][0]])
    assert len(fixture_analysis.kernels) == len(total)


def test_step_gpu_time_matches_raw_events(fixture_events, fixture_analysis):
    launches = {
        e["args"]["correlation"]: e
        for e in fixture_events
        if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})
    }
    steps = [e for e in fixture_events if e.get("cat") == "user_annotation" and e["name"].startswith("denoising_step_")]
    assert len(steps) == 2
    expected = {}
    for step in steps:
        mine = [
            k
            for k in gpu_events(fixture_events)
            if (launch := launches.get(k["args"]["correlation"])) is not None
            and (launch["pid"], launch["tid"]) == (step["pid"], step["tid"])
            and step["ts"] <= launch["ts"] < step["ts"] + step["dur"]
        ]
        first, last = min(k["ts"] for k in mine), max(k["ts"] + k["dur"] for k in mine)
        step_number = int(step["name"].rsplit("_", 1)[1])
        expected[step_number] = (sum(k["dur"] for k in mine) / 1000, len(mine), (last - first) / 1000)
    got = fixture_analysis.steps.set_index("step")
    assert sorted(got.index) == [0, 1]
    for step, (gpu_ms, kernels, span_ms) in expected.items():
        assert got.loc[step, "gpu_ms"] == pytest.approx(gpu_ms, rel=1e-12)
        assert got.loc[step, "kernels"] == kernels
        assert got.loc[step, "gpu_span_ms"] == pytest.approx(span_ms, rel=1e-12)
    # Kineto's own GPU-side span of each step (gpu_user_annotation) agrees with ours within the ~1 ns
    # resolution that float64 leaves to microsecond timestamps of 4.5e12.
    for gpu_span in (e for e in fixture_events if e.get("cat") == "gpu_user_annotation"):
        step = int(gpu_span["name"].rsplit("_", 1)[1])
        assert got.loc[step, "gpu_span_ms"] == pytest.approx(gpu_span["dur"] / 1000, abs=1e-5)
    assert fixture_analysis.step_categories.groupby("step")["gpu_ms"].sum().to_dict() == pytest.approx(
        {step: gpu_ms for step, (gpu_ms, _, _) in expected.items()}
    )


def test_busy_and_idle_match_raw_events(fixture_events, fixture_analysis):
    intervals = sorted((e["ts"], e["ts"] + e["dur"]) for e in gpu_events(fixture_events))
    busy_us, (open_start, open_end) = 0.0, intervals[0]
    for start, end in intervals[1:]:
        if start > open_end:
            busy_us += open_end - open_start
            open_start, open_end = start, end
        else:
            open_end = max(open_end, end)
    busy_us += open_end - open_start
    window_us = max(end for _, end in intervals) - intervals[0][0]
    device = fixture_analysis.devices.set_index("device").loc[0]
    assert len(fixture_analysis.devices) == 1
    assert device["busy_ms"] == pytest.approx(busy_us / 1000, rel=1e-9)
    assert device["window_ms"] == pytest.approx(window_us / 1000, rel=1e-12)
    assert fixture_analysis.idle_ms == pytest.approx((window_us - busy_us) / 1000, rel=1e-6)
    assert 90 < fixture_analysis.busy_pct < 100


def test_scopes_cover_all_gpu_time(fixture_analysis):
    scopes = fixture_analysis.scopes.set_index("scope")
    assert fixture_analysis.outside_scopes_ms == 0.0
    assert fixture_analysis.unlaunched == 0
    assert scopes["incl_gpu_ms"].sum() == pytest.approx(fixture_analysis.gpu_ms)
    assert scopes.loc["denoising_step_0", "incl_kernels"] + scopes.loc["denoising_step_1", "incl_kernels"] == 6312


def test_fast_and_ijson_parsers_read_the_same_columns(fixture_trace, tmp_path):
    import gzip

    plain = tmp_path / "fixture.trace.json"
    plain.write_bytes(gzip.decompress(fixture_trace.read_bytes()))
    fast, fast_stats = read_trace(fixture_trace, parser="fast")
    slow, slow_stats = read_trace(plain, parser="ijson")
    assert (fast_stats.parser, slow_stats.parser) == ("fast", "ijson")
    assert fast_stats.raw_bytes == slow_stats.raw_bytes == plain.stat().st_size
    assert fast_stats.events_kept == slow_stats.events_kept
    for field in (
        "gpu_name_id",
        "gpu_device",
        "gpu_stream",
        "gpu_start_us",
        "gpu_dur_us",
        "gpu_correlation",
        "launch_thread",
        "launch_start_us",
        "launch_correlation",
        "scope_start_us",
        "scope_end_us",
    ):
        assert (getattr(fast, field) == getattr(slow, field)).all(), field
    assert fast.gpu_names == slow.gpu_names and fast.scope_names == slow.scope_names


def test_summary_metrics_are_flat_floats_for_every_category(fixture_analysis):
    metrics = summary_metrics(fixture_analysis)
    assert all(isinstance(v, float) for v in metrics.values())
    assert metrics["profile.cat.gemm_ms"] == pytest.approx(
        fixture_analysis.categories.set_index("category").loc["gemm", "gpu_ms"]
    )
    assert metrics["profile.cat.rope_ms"] == 0.0  # in the map, absent from this trace: still logged
    assert metrics["profile.gpu_busy_ms"] + metrics["profile.idle_ms"] == pytest.approx(metrics["profile.window_ms"])
    assert metrics["profile.steps"] == 2.0
    assert all(re.fullmatch(r"[0-9A-Za-z_\-./ ]+", key) for key in metrics)


def test_custom_step_regex_and_no_match(fixture_trace):
    numbered = analyze_trace(fixture_trace, step_regex=r"denoising_step_(1)$")
    assert list(numbered.steps["scope"]) == ["denoising_step_1"]
    assert list(numbered.steps["step"]) == [1]
    unnumbered = analyze_trace(fixture_trace, step_regex=r"denoising")  # no group: steps are numbered in order
    assert list(unnumbered.steps["step"]) == [0, 1]
    assert list(unnumbered.steps["scope"]) == ["denoising_step_0", "denoising_step_1"]
    none = analyze_trace(fixture_trace, step_regex=r"^ProfilerStep#(\d+)$")
    assert none.step_pattern is None and none.steps.empty
