"""measure.floor=true on real tiny FLUX runs on CPU: the floor of the run's own step, timed on the CPU, logged beside
its figures in a real MLflow store (tracked) or kept in metrics.json and <run dir>/floor/ (untracked, uploaded later);
refused before anything runs where it cannot apply."""

from __future__ import annotations

import json

import pytest

from diffexp import names
from diffexp.config.schema import TrackingConfig
from diffexp.errors import ConfigError
from diffexp.floor.shapes import CATEGORIES
from diffexp.results import RunResult
from diffexp.run import execute
from diffexp.upload import upload_run_dir
from tests.conftest import artifact_paths

FLOOR_RUN = ("measure.floor=true", "model.sampling.num_inference_steps=2")
CATEGORY_METRICS = ("floor.gemm_ms", "floor.attention_ms", "floor.memory_ms")


def test_a_tracked_run_logs_its_floor_beside_its_figures(make_config, mlflow_client, tmp_path):
    outcome = execute(make_config(*FLOOR_RUN), tmp_path / "run")
    run = mlflow_client.get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics

    # Efficiency is the floor over the run's own median step, both as logged.
    assert metrics["floor.step_ms"] == metrics["denoise_step_ms"]
    assert metrics["floor.efficiency"] == pytest.approx(metrics["floor.ms"] / metrics["denoise_step_ms"])
    assert metrics["floor.ms"] == pytest.approx(sum(metrics[k] for k in CATEGORY_METRICS))
    assert all(metrics[k] > 0 for k in CATEGORY_METRICS) and metrics["floor.copy_gbps"] > 0
    # The tiny FLUX's step: one transformer call (guidance-distilled), three attention calls (two blocks).
    assert metrics["floor.transformer_calls"] == 1 and metrics["floor.attention_calls"] == 3
    assert run.data.tags[names.FLOOR_DEVICE].startswith("cpu (")

    assert {"floor/floor.json", "floor/floor.md"} <= set(artifact_paths(mlflow_client, outcome.run_id))
    data = json.loads(open(mlflow_client.download_artifacts(outcome.run_id, "floor/floor.json")).read())
    assert data["floor_ms"] == pytest.approx(metrics["floor.ms"]) and data["counted_on"] == "cpu"
    assert data["model"] == "tiny_flux" and data["shape"] == "64×64" and set(data["categories"]) == set(CATEGORIES)
    recorded = json.loads(open(mlflow_client.download_artifacts(outcome.run_id, "metrics.json")).read())
    assert recorded["extra_metrics"]["floor.ms"] == metrics["floor.ms"]


def test_an_untracked_run_keeps_its_floor_to_upload_later(make_config, mlflow_client, mlflow_uri, tmp_path):
    run_dir = tmp_path / "run"
    outcome = execute(make_config(*FLOOR_RUN, "tracking.enabled=false"), run_dir)
    assert outcome.run_id == "untracked"
    result = RunResult.read_json(run_dir / "metrics.json")
    figures = result.metrics()
    assert figures["floor.efficiency"] == pytest.approx(figures["floor.ms"] / figures["denoise_step_ms"])
    assert result.tags[names.FLOOR_DEVICE].startswith("cpu (") and result.artifacts["floor"] == str(run_dir / "floor")
    assert json.loads((run_dir / "floor" / "floor.json").read_text())["floor_ms"] == pytest.approx(figures["floor.ms"])
    assert (run_dir / "floor" / "floor.md").read_text().startswith("# compute floor: tiny_flux")

    run_id = upload_run_dir(run_dir, TrackingConfig(uri=mlflow_uri))
    uploaded = mlflow_client.get_run(run_id)
    assert uploaded.data.metrics["floor.ms"] == figures["floor.ms"]
    assert uploaded.data.tags[names.FLOOR_DEVICE] == result.tags[names.FLOOR_DEVICE]
    assert {"floor/floor.json", "floor/floor.md"} <= set(artifact_paths(mlflow_client, run_id))


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        # SGLang runs in its own processes: the in-process pipeline the floor is counted on is not there.
        (("engine=sglang",), ["measure.floor=true with engine.name='sglang'", "allowed with engine=diffusers"]),
        # No architecture file, no transformer to count.
        (("model.arch=null",), ["measure.floor=true with model.arch=None", "conf/arch/", "tiny_flux, tiny_flux2"]),
    ],
)
def test_where_the_floor_cannot_apply_nothing_runs(overrides, named, make_config, mlflow_client, tmp_path):
    with pytest.raises(ConfigError) as info:
        execute(make_config("measure.floor=true", *overrides), tmp_path / "run")
    [problem] = info.value.problems
    assert all(part in problem for part in named), problem
    assert mlflow_client.search_experiments(filter_string="name = 'tiny_flux'") == []
    assert not (tmp_path / "run").exists()


def test_a_preset_resolution_is_labelled_by_its_size():
    """Wan2.2-TI2V-5B's recipe asks for 720p (no width/height): its floor was titled None×None×81f on the H200."""
    from diffexp.config import compose, to_config
    from diffexp.floor.of_run import shape_label

    cfg = to_config(compose(["model=wan22_ti2v", "engine=diffusers"]))
    assert shape_label(cfg) == "1280×720×81f (720p)"
    assert shape_label(to_config(compose(["model=tiny_flux"]))) == "64×64"


def test_a_run_killed_during_its_floor_keeps_what_it_measured(make_config, mlflow_uri, tmp_path, monkeypatch):
    """2026-12-03 on the H200: Wan2.2-T2V-A14B's 4 measured steps were done when `timeout` sent SIGTERM during its
    floor (minutes, for 28 B of DiT), and no metrics.json was written. The figures are now kept, flagged, and
    uploaded with the flag shown under the suite table."""
    import os
    import signal
    import time

    import diffexp.floor.of_run
    from diffexp.errors import RunInterrupted
    from diffexp.reports.suite import suite_runs, suite_table

    def killed_while_timing(*_args, **_kwargs):  # a real SIGTERM to this process, through the run's own handler
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)

    monkeypatch.setattr(diffexp.floor.of_run, "add_floor", killed_while_timing)
    run_dir = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        execute(make_config(*FLOOR_RUN, "tracking.enabled=false"), run_dir)
    kept = RunResult.read_json(run_dir / "metrics.json")
    assert kept.denoise_s > 0 and len(kept.denoise_step_ms) == 2 and "floor.ms" not in kept.metrics()
    assert kept.tags[names.INCOMPLETE] == "the run ended during its floor: RunInterrupted: received signal 15"
    assert kept.tags["model"] == "tiny_flux"  # the run's own tags: it can be uploaded from elsewhere

    upload_run_dir(run_dir, TrackingConfig(uri=mlflow_uri))
    table = suite_table(suite_runs(mlflow_uri), every_model=True)
    assert "⚠ INCOMPLETE (its figures kept, what followed them not done): the run ended during its floor" in table
