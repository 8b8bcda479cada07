"""The paired A/B statistics and the nvidia-smi sample parsing of diffexp.bench.transformer_ab (CPU)."""

import math
import random

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
