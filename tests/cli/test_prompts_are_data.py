"""Prompts are data: `${…}` in one is never resolved, and a prompt too long for a param is kept whole."""

from __future__ import annotations

from mlflow import MlflowClient

from diffexp import names
from diffexp.config import compose, to_config
from diffexp.config.store import load_config_yaml
from tests.conftest import artifact_paths, run_cli

LITERAL = "${oc.env:HOME} at ${model.name}"


def test_composition_keeps_interpolations_in_prompts_literal():
    cfg = to_config(compose([f"model.sampling.prompt='{LITERAL}'", "model.sampling.negative_prompt='no ${x}'"]))
    assert cfg.model.sampling.prompt == LITERAL and cfg.model.sampling.negative_prompt == "no ${x}"


def test_logged_param_and_recorded_config_are_the_literal_text_and_a_long_prompt_is_whole(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    prompt = LITERAL + " " + "a cat " * 1200  # 7 200+ characters: over MLflow's 6 000 per param
    proc = run_cli(
        ["diffexp", f"model.sampling.prompt='{prompt}'", "model.sampling.num_inference_steps=1", f"tracking.uri={uri}"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("tiny_flux").experiment_id])
    logged = run.data.params["model.sampling.prompt"]
    assert logged.startswith(LITERAL) and len(logged) == 6000
    assert run.data.tags[names.PROMPT_TRUNCATED] == "true"
    assert "prompt.txt" in artifact_paths(client, run.info.run_id)
    whole = client.download_artifacts(run.info.run_id, "prompt.txt", str(tmp_path / "dl"))
    assert open(whole).read() == prompt
    [run_dir] = [p.parent for p in (tmp_path / "outputs").rglob("prompt.txt")]
    assert (run_dir / "prompt.txt").read_text() == prompt
    assert load_config_yaml(run_dir / "config.yaml").model.sampling.prompt == prompt
