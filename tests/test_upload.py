"""Runs made untracked (a GPU box without MLflow) upload into a store with their figures and machine tags."""

from __future__ import annotations

import json

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
