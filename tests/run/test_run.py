"""Tiny pipelines end to end through diffexp.run into a real MLflow store; determinism; failure paths."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from diffexp.errors import DiffexpError
from diffexp.run import execute
from diffexp.tracking.naming import run_name
from tests.conftest import artifact_paths

PRIMARY = ["denoise_s", "denoise_step_ms", "text_encode_s", "vae_decode_s", "e2e_s", "peak_mem_gib"]


@pytest.fixture(scope="module")
def flux_runs(tmp_path_factory):
    """Two tiny_flux runs with the same seed and one with another seed, in one store."""
    from diffexp.config import compose, to_config

    root = tmp_path_factory.mktemp("flux")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    outcomes = {}
    for name, seed in (("a", 42), ("b", 42), ("c", 7)):
        cfg = to_config(compose([f"model.sampling.seed={seed}", f"tracking.uri={uri}", f"output_dir={root / name}"]))
        outcomes[name] = execute(cfg, root / name)
    return uri, outcomes


def test_tiny_flux_run_is_logged_with_all_metrics_tags_and_artifacts(flux_runs):
    from mlflow import MlflowClient

    uri, outcomes = flux_runs
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(outcomes["a"].run_id)
    assert run.info.status == "FINISHED"
    for key in PRIMARY:
        assert run.data.metrics[key] > 0, key
    # Denoise is part of end to end, and a step is part of denoise.
    assert run.data.metrics["denoise_s"] < run.data.metrics["e2e_s"]
    assert run.data.metrics["denoise_step_ms"] / 1e3 < run.data.metrics["denoise_s"]
    series = client.get_metric_history(run.info.run_id, "denoise_step_ms_series")
    assert [m.step for m in series] == [0, 1, 2, 3]
    assert sum(m.value for m in series) / 1e3 == pytest.approx(run.data.metrics["denoise_s"], rel=0.05)
    assert run.data.params["model.name"] == "tiny_flux"
    assert run.data.params["model.sampling.num_inference_steps"] == "4"
    assert run.data.params["parallel.num_gpus"] == "1"
    tags = run.data.tags
    assert tags["engine"] == "diffusers" and tags["weights.random"] == "true"
    for key in (
        "git.commit",
        "git.dirty",
        "version.torch",
        "version.diffusers",
        "version.sglang",
        "cuda",
        "gpu.names",
        "host",
    ):
        assert key in tags, key
    assert tags["mlflow.runName"] == "tiny_flux · single"
    artifacts = artifact_paths(client, run.info.run_id)
    assert {"outputs/image_000.png", "config.yaml", "run.log", "metrics.json"} <= set(artifacts)
    local = client.download_artifacts(run.info.run_id, "outputs/image_000.png")
    assert Image.open(local).size == (64, 64)


def test_same_seed_same_output_on_cpu(flux_runs):
    _, outcomes = flux_runs
    a, b, c = (np.asarray(Image.open(outcomes[k].result.outputs[0])) for k in "abc")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_tiny_wan_video_run(make_config, mlflow_client, tmp_path):
    cfg = make_config("model=tiny_wan")
    outcome = execute(cfg, tmp_path / "run")
    run = mlflow_client.get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    for key in PRIMARY:
        assert run.data.metrics[key] > 0, key
    artifacts = set(artifact_paths(mlflow_client, outcome.run_id))
    assert "outputs/video_000.frames.npz" in artifacts
    frames = np.load(tmp_path / "run" / "outputs" / "video_000.frames.npz")["frames"]
    assert frames.shape == (9, 32, 32, 3) and frames.dtype == np.uint8
    assert any(a.endswith(".mp4") or "_frames/" in a for a in artifacts)
    assert len(mlflow_client.get_metric_history(outcome.run_id, "denoise_step_ms_series")) == 4


def test_compile_warmup_is_excluded_and_recorded(make_config, mlflow_client, tmp_path):
    cfg = make_config("compile=on", "compile.enabled=false", "compile.warmup=true")
    outcome = execute(cfg, tmp_path / "run")
    run = mlflow_client.get_run(outcome.run_id)
    assert run.data.tags["warmup_excluded"] == "true" and run.data.tags["warmup_runs"] == "1"
    assert run.data.metrics["warmup_s"] > 0


def test_run_name_reads_like_the_choices(make_config):
    cfg = make_config("model=wan22_t2v", "parallel=cfg_ulysses4", "offload=layerwise", "attention=fa", "compile=on")
    assert run_name(cfg) == "wan22_t2v · cfg_ulysses4 · layerwise0.1 · fa · compile"


def test_run_name_lists_the_kernel_options_that_act_on_the_model(make_config):
    # kernels=triton turns both options on; the split of proj_out acts on FLUX only, so a Wan run is not named by it.
    flux = make_config("model=flux1_dev", "engine=diffusers", "kernels=triton")
    wan = make_config("model=wan22_ti2v", "engine=diffusers", "kernels=triton")
    assert flux.kernels.split_proj_out and wan.kernels.split_proj_out
    assert "kernels=triton+gelu_epilogue+split_proj_out" in run_name(flux).split(" · ")
    assert "kernels=triton+gelu_epilogue" in run_name(wan).split(" · ")


def test_failure_during_run_leaves_failed_run_with_traceback_and_log(make_config, mlflow_client, tmp_path):
    # A real failure: the tiny FLUX components cannot run as a Wan pipeline.
    cfg = make_config("model.pipeline=WanPipeline")
    with pytest.raises(Exception) as info:
        execute(cfg, tmp_path / "run")
    [run] = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("tiny_flux").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["error"].startswith(type(info.value).__name__)
    artifacts = set(artifact_paths(mlflow_client, run.info.run_id))
    assert {"traceback.txt", "run.log", "config.yaml"} <= artifacts
    with open(mlflow_client.download_artifacts(run.info.run_id, "traceback.txt")) as f:
        assert "pipeline_wan.py" in f.read()


def test_config_error_creates_no_run(make_config, mlflow_client, tmp_path):
    cfg = make_config("parallel=ulysses2", "parallel.num_gpus=3")
    with pytest.raises(DiffexpError, match="parallel.num_gpus=3"):
        execute(cfg, tmp_path / "run")
    assert mlflow_client.search_experiments(filter_string="name = 'tiny_flux'") == []


def test_offload_on_cpu_is_refused_clearly(make_config, tmp_path, mlflow_client):
    cfg = make_config("offload=layerwise", "engine.device=cpu")
    with pytest.raises(DiffexpError, match="offload.dit_layerwise=true: offloading needs a CUDA device"):
        execute(cfg, tmp_path / "run")


def test_the_summary_shows_headline_figures_with_intervals_and_says_a_single_shot_has_no_noise_figure():
    from diffexp.run import summary_rows

    repeated = {"denoise_s": 2.0, "denoise_s.n": 5, "denoise_s.ci95_low": 1.9, "denoise_s.ci95_high": 2.2,
                "e2e_s": 3.0, "stage_s.load": 1.0}  # fmt: skip
    assert summary_rows(repeated) == [("★ denoise_s", "2", "[1.9, 2.2]", "5"), ("e2e_s", "3", "noise unknown", "1")]
    single = {"denoise_s": 2.0, "denoise_s.n": 1, "denoise_s.ci95_low": 2.0, "denoise_s.ci95_high": 2.0}
    assert summary_rows(single) == [("★ denoise_s", "2", "noise unknown", "1")]
