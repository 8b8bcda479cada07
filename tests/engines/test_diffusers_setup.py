"""What the in-process engine's load records, on the real tiny FLUX (CPU) through diffexp.run into a real MLflow
store: a random-weight build logs its cost (models.arch.BuildStats); a checkpoint's load has none to log."""

from __future__ import annotations

from diffexp.run import execute


def test_a_random_weight_build_logs_its_time_and_peak_host_rss(make_config, mlflow_client):
    cfg = make_config("model.weights=random", "model.sampling.num_inference_steps=2")
    outcome = execute(cfg, cfg.output_dir)
    run = mlflow_client.get_run(outcome.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["weights"] == "random"
    m = run.data.metrics
    # The build is part of the load stage; the peak RSS is the process's, so at least the torch it imported.
    assert 0 < m["build_s"] <= m["stage_s.load"]
    assert 0.1 < m["build_host_rss_gib"] < 64


def test_a_checkpoint_load_logs_no_build(make_config):
    cfg = make_config("tracking.enabled=false", "model.sampling.num_inference_steps=2")  # weights=tiny: from disk
    metrics = execute(cfg, cfg.output_dir).result.metrics()
    assert "stage_s.load" in metrics and "build_s" not in metrics and "build_host_rss_gib" not in metrics
