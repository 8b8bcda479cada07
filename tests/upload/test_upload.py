"""Runs made untracked (a GPU box without MLflow) upload into a store with their figures and machine tags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffexp.config.schema import TrackingConfig
from diffexp.run import execute
from diffexp.upload import upload_run_dir


def test_untracked_run_then_upload(make_config, mlflow_client, mlflow_uri, tmp_path):
    cfg = make_config("tracking.enabled=false", "model.sampling.num_inference_steps=2")
    outcome = execute(cfg, tmp_path / "run")
    assert outcome.run_id == "untracked"
    assert mlflow_client.search_experiments(filter_string="name = 'tiny_flux'") == []
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert recorded["tags"]["host"] and recorded["denoise_s"] > 0

    run_id = upload_run_dir(tmp_path / "run", TrackingConfig(uri=mlflow_uri), {"source": "gpu-box"})
    run = mlflow_client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["denoise_s"] == recorded["denoise_s"]
    assert run.data.tags["host"] == recorded["tags"]["host"] and run.data.tags["source"] == "gpu-box"
    assert run.data.params["model.sampling.num_inference_steps"] == "2"
    assert {a.path for a in mlflow_client.list_artifacts(run_id, "outputs")} == {"outputs/image_000.png"}
    assert len(mlflow_client.get_metric_history(run_id, "denoise_step_ms_series")) == 2


H100_RUNS = Path(__file__).parents[1] / "fixtures" / "flux_dit_h100"


@pytest.mark.parametrize(
    "compiled,stock_s,triton_s",
    [(False, 5.1771, 3.9825), (True, 3.8030, 3.7335)],  # -23.1 % eager, -1.8 % compiled
)
def test_recorded_h100_pairs_upload_as_comparable_runs(compiled, stock_s, triton_s, mlflow_client, mlflow_uri):
    """FLUX.1-dev-size DiT, 28 steps, stock vs kernels=triton, measured on an H100 without MLflow
    (`python -m diffexp.bench.flux_dit`, docs/results/h100-2026-11-23-kernels.md): uploaded, each pair is two comparable runs."""
    runs = {}
    for variant in ("compile", "compile_triton") if compiled else ("eager", "eager_triton"):
        run_id = upload_run_dir(H100_RUNS / variant, TrackingConfig(uri=mlflow_uri), {"source": "h100"})
        runs[variant.endswith("triton")] = mlflow_client.get_run(run_id)
    stock, triton = runs[False], runs[True]
    for run in (stock, triton):
        assert run.info.status == "FINISHED"
        assert run.data.params["compile.enabled"] == str(compiled) and run.data.params["model.weights"] == "random"
        assert run.data.tags["gpu.names"] == "NVIDIA H100 80GB HBM3"
        assert len(mlflow_client.get_metric_history(run.info.run_id, "denoise_step_ms_series")) == 28
    assert (stock.data.params["kernels.impl"], triton.data.params["kernels.impl"]) == ("torch", "triton")
    assert "norm_modulate_joint" in triton.data.tags["kernels.patched"]
    assert stock.data.metrics["denoise_s"] == pytest.approx(stock_s, abs=1e-4)
    assert triton.data.metrics["denoise_s"] == pytest.approx(triton_s, abs=1e-4)


def test_a_folder_the_store_holds_is_not_logged_twice(make_config, mlflow_client, mlflow_uri, tmp_path):
    cfg = make_config("tracking.enabled=false", "model.sampling.num_inference_steps=2")
    execute(cfg, tmp_path / "run")
    tracking = TrackingConfig(uri=mlflow_uri)
    first = upload_run_dir(tmp_path / "run", tracking)
    assert upload_run_dir(tmp_path / "run", tracking) == first  # named, not logged again
    [experiment] = [e.experiment_id for e in mlflow_client.search_experiments() if e.name == "tiny_flux"]
    assert len(mlflow_client.search_runs([experiment])) == 1
    again = upload_run_dir(tmp_path / "run", tracking, again=True)
    assert again != first and len(mlflow_client.search_runs([experiment])) == 2
    # Other figures (the folder re-run) are another upload.
    execute(cfg, tmp_path / "run")
    assert upload_run_dir(tmp_path / "run", tracking) not in (first, again)
