"""`python -m diffexp.floor` end to end on CPU: the tiny FLUX counted, timed on the CPU and written (without mlflow
importable), counted only when asked, and the floor logged onto a real run in a real MLflow store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from diffexp.floor.__main__ import main
from diffexp.floor.shapes import ATTENTION, GEMM
from tests.conftest import artifact_paths, as_on_a_gpu_box, cli_env


def test_tiny_flux_end_to_end_on_cpu_without_mlflow(tmp_path):
    out = tmp_path / "floor"
    proc = subprocess.run(
        [sys.executable, "-m", "diffexp.floor", "model=tiny_flux", "--out", str(out), "--step-ms", "12.5"],
        capture_output=True,
        text=True,
        env=as_on_a_gpu_box(cli_env(), tmp_path),  # untracked use (a GPU box) must not need MLflow
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((out / "floor.json").read_text())
    assert data["model"] == "tiny_flux" and data["counted_on"] == "cpu"
    # Timed on the CPU it was counted on: every shape, and the copy bandwidth for the memory-bound bytes.
    assert data["device"]["name"].startswith("cpu (") and data["device"]["copy_gbps"] > 0
    assert all(s["ms_each"] > 0 for s in data["shapes"])
    assert data["floor_ms"] == pytest.approx(sum(c["ms"] for c in data["categories"].values()))
    assert data["step_ms"] == 12.5 and data["efficiency"] == pytest.approx(data["floor_ms"] / 12.5)
    assert data["transformer_calls"] == 1
    kinds = {s["kind"] for s in data["shapes"]}
    assert kinds == {"gemm", "attention"}
    assert data["categories"][GEMM]["work"] == sum(
        2 * s["m"] * s["n"] * s["k"] * s["count"] for s in data["shapes"] if s["kind"] == "gemm"
    )
    assert data["categories"][ATTENTION]["work"] > 0 and data["memory_bytes"] > 0
    assert (out / "floor.md").read_text().startswith("# compute floor: tiny_flux")


def test_count_only_times_nothing(tmp_path):
    assert main(["model=tiny_flux", "--count-only", "--step-ms", "12.5", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "floor.json").read_text())
    assert data["floor_ms"] is None and data["device"] is None
    assert data["efficiency"] is None  # no efficiency without a measured floor
    assert data["categories"][GEMM]["work"] > 0


@pytest.mark.slow
def test_floor_logged_onto_a_run(make_config, mlflow_client, mlflow_uri, tmp_path):
    from diffexp.run import execute

    outcome = execute(make_config("model.sampling.num_inference_steps=2"), tmp_path / "run")
    step_ms = mlflow_client.get_run(outcome.run_id).data.metrics["denoise_step_ms"]

    assert main(["model=tiny_flux", "--run", outcome.run_id, "--tracking-uri", mlflow_uri]) == 0
    metrics = mlflow_client.get_run(outcome.run_id).data.metrics
    assert metrics["floor.step_ms"] == step_ms  # read from the run itself
    assert metrics["floor.gemm_tflop"] > 0 and metrics["floor.attention_calls"] == 3
    assert metrics["floor.efficiency"] == pytest.approx(metrics["floor.ms"] / step_ms)  # timed on the CPU
    assert {"floor/floor.json", "floor/floor.md"} <= set(artifact_paths(mlflow_client, outcome.run_id))

    # A run made at another resolution is refused, naming the field.
    assert (
        main(["model=tiny_flux", "model.sampling.width=128", "--run", outcome.run_id, "--tracking-uri", mlflow_uri])
        == 2
    )
