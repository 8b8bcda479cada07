"""The paired A/B statistics and the nvidia-smi sample parsing of diffexp.bench.transformer_ab (CPU)."""

import json
import math
import random
import shutil
from pathlib import Path

import pytest

from diffexp.bench.transformer_ab import main, paired_summary, sampler_summary


def test_paired_rounds_cancel_shared_drift():
    """Clock drift that hits both variants alike drops out of the paired difference."""
    rng = random.Random(0)
    drift = [rng.gauss(0, 3.0) for _ in range(200)]  # ms, like a power-capped GPU's clock wander
    stock = [136.0 + d + rng.gauss(0, 0.2) for d in drift]
    triton = [133.0 + d + rng.gauss(0, 0.2) for d in drift]
    s = paired_summary(stock, triton)
    assert s["rounds"] == 200
    assert abs(s["gain_ms_mean"] - 3.0) < 0.1 and s["gain_ms_ci95"] < 0.1
    assert s["stock_ms_sd"] > 2.0  # the unpaired spread is far wider than the paired interval
    assert s["gain_pct"] == pytest.approx(100 * s["gain_ms_mean"] / s["stock_ms_mean"])
    assert s["triton_faster_in_pct_of_rounds"] > 99


def test_no_gain_gives_an_interval_around_zero():
    rng = random.Random(1)
    stock = [100 + rng.gauss(0, 1) for _ in range(100)]
    triton = [100 + rng.gauss(0, 1) for _ in range(100)]
    s = paired_summary(stock, triton)
    assert abs(s["gain_ms_mean"]) <= s["gain_ms_ci95"] * 1.5
    assert 25 < s["triton_faster_in_pct_of_rounds"] < 75


def test_figures_are_keyed_by_the_variants_names():
    """`--base triton --candidate triton_gelu`: each variant's figures under its own name, the gain base - candidate."""
    s = paired_summary([130.0, 131.0, 129.0], [127.0, 128.5, 126.0], ("triton", "triton_gelu"))
    assert s["triton_ms_median"] == 130.0 and s["triton_gelu_ms_median"] == 127.0
    assert s["gain_ms_mean"] == pytest.approx(8.5 / 3) and s["triton_gelu_faster_in_pct_of_rounds"] == 100
    assert not any(key.startswith("stock") for key in s)


def test_refuses_the_same_variant_on_both_sides(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--base", "triton", "--candidate", "triton"])
    assert "--base and --candidate are both 'triton'" in capsys.readouterr().err


def test_single_round_has_no_interval():
    assert math.isnan(paired_summary([10.0], [9.0])["gain_ms_ci95"])


def test_sampler_summary_reads_nvidia_smi_csv(tmp_path):
    csv = tmp_path / "smi.csv"
    csv.write_text(
        "2026/11/23 18:30:00.100, 1980, 512.30, 0x0000000000000000\n"
        "2026/11/23 18:30:00.200, 1755, 699.10, 0x0000000000000004\n"
        "2026/11/23 18:30:00.300, [N/A], [N/A], [N/A]\n"
    )
    s = sampler_summary(csv)
    assert s["samples"] == 2 and s["sm_mhz_min"] == 1755 and s["sm_mhz_max"] == 1980
    assert s["power_w_max"] == pytest.approx(699.1)
    assert s["clock_event_reasons"] == ["0x0000000000000000", "0x0000000000000004"]
    assert sampler_summary(tmp_path / "missing.csv") == {}


def test_refuses_to_start_without_a_gpu(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path)])
    assert "needs a CUDA GPU" in capsys.readouterr().err


# Recorded on an H100 (docs/results/h100-2026-11-23-kernels.md): the outputs' agreement, 10 eager and 100 compiled paired rounds,
# nvidia-smi samples, and one profiled compiled forward of each variant.
RECORDED = Path(__file__).parents[1] / "fixtures" / "transformer_ab_h100"


def test_recorded_summaries_follow_from_the_recorded_rounds():
    result = json.loads((RECORDED / "transformer_ab.json").read_text())
    for phase in ("eager", "compiled"):
        recorded = result[phase]
        again = paired_summary(recorded["stock_ms"], recorded["triton_ms"])
        for key, value in again.items():
            assert recorded[key] == pytest.approx(value), (phase, key)
    assert result["compiled"]["gain_ms_mean"] == pytest.approx(1.960, abs=1e-3)
    assert result["compiled"]["gain_ms_mean"] > result["compiled"]["gain_ms_ci95"] > 0  # a gain, outside noise
    summary, recorded_gpu = sampler_summary(RECORDED / "smi_compiled.csv"), result["compiled"]["gpu"]
    # pytest.approx compares flat mappings only: the reasons (a list of strings) are compared exactly.
    assert summary.pop("clock_event_reasons") == recorded_gpu["clock_event_reasons"]
    assert summary == pytest.approx({k: v for k, v in recorded_gpu.items() if k != "clock_event_reasons"})


def test_recorded_outputs_agree_to_bf16_rounding():
    """Same weights and inputs: stock and Triton-kernel forwards differ by rounding, eager and compiled."""
    agreement = json.loads((RECORDED / "transformer_ab.json").read_text())["agreement"]
    assert set(agreement) == {"eager", "compiled"}
    for found in agreement.values():
        assert found["finite"]
        assert found["relative_mean_diff"] < 0.02
        assert found["max_abs_diff"] < 0.05  # output values are O(1): a few bf16 spacings


def test_recorded_profiles_show_gpu_time_saved_and_no_host_wait():
    """The finding in docs/results/h100-2026-11-23-kernels.md, read from the two recorded traces by diffexp.profile."""
    from diffexp.profile.analysis import analyze_trace

    stock = analyze_trace(RECORDED / "compiled_stock.trace.json.gz")
    triton = analyze_trace(RECORDED / "compiled_triton.trace.json.gz")
    by_cat = lambda a: a.categories.set_index("category")["gpu_ms"]  # noqa: E731
    s, t = by_cat(stock), by_cat(triton)
    assert t["gemm"] == pytest.approx(s["gemm"], rel=0.01) and t["attn"] == pytest.approx(s["attn"], rel=0.01)
    assert s["norm"] - t["norm"] > 3.0  # ms of norm kernels per forward removed
    assert triton.busy_ms < stock.busy_ms - 3.0
    # Inductor launches the kernels itself (triton_op): the GPU waits for the host no longer than stock's.
    assert triton.idle_ms == pytest.approx(stock.idle_ms, abs=0.5)


def test_results_are_logged_to_mlflow(tmp_path, mlflow_uri):
    mlflow = pytest.importorskip("mlflow")
    out = tmp_path / "ab"
    shutil.copytree(RECORDED, out)
    main(["--log", str(out), "--tracking-uri", mlflow_uri])

    mlflow.set_tracking_uri(mlflow_uri)
    (run,) = mlflow.search_runs(experiment_names=["transformer_ab"], output_format="list")
    assert run.info.status == "FINISHED"
    assert run.data.params["gpu"] == "NVIDIA H100 80GB HBM3" and run.data.params["compiled.rounds"] == "100"
    assert run.data.metrics["compiled.gain_ms_mean"] == pytest.approx(1.960, abs=1e-3)
    assert run.data.metrics["eager.gain_pct"] == pytest.approx(15.8, abs=0.1)
    assert run.data.metrics["compiled.gpu.power_w_mean"] == pytest.approx(683.2, abs=0.1)
    assert run.data.metrics["agreement.compiled.max_abs_diff"] == pytest.approx(0.0337, abs=1e-4)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"transformer_ab.json", "smi_compiled.csv", "compiled_triton.trace.json.gz"} <= artifacts


def test_log_needs_a_result_directory(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--log", str(tmp_path)])
    assert "no transformer_ab.json there" in capsys.readouterr().err
