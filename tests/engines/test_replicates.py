"""measure.replicates=K: K fresh processes of the real tiny FLUX (CPU) folded into one MLflow run with
per-replicate figures and a between-replicate spread beside the within-process one; no process left behind."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from diffexp.run import execute

pytestmark = pytest.mark.slow  # each replicate is a fresh process importing torch and diffusers


def test_replicates_aggregate_into_one_run(make_config, mlflow_client):
    cfg = make_config("engine.device=cpu", "measure.replicates=2", "measure.repeats=2")
    before = set(psutil.Process().children(recursive=True))
    outcome = execute(cfg, cfg.output_dir)
    assert outcome.status == "FINISHED"
    assert set(psutil.Process().children(recursive=True)) <= before  # every replicate process is gone

    run = mlflow_client.get_run(outcome.run_id)
    m, tags = run.data.metrics, run.data.tags
    per_replicate = [
        h.value
        for h in sorted(
            mlflow_client.get_metric_history(outcome.run_id, "denoise_s_replicate_series"), key=lambda h: h.step
        )
    ]
    assert len(per_replicate) == 2
    assert m["denoise_s"] == pytest.approx(sum(per_replicate) / 2)  # the median of two
    assert m["denoise_s.n"] == 2 and m["denoise_s.within.n"] == 4
    assert len(mlflow_client.get_metric_history(outcome.run_id, "denoise_s_series")) == 4
    assert tags["noise"] == "replicates=2" and tags["measure.replicates"] == "2"

    summary = json.loads((Path(cfg.output_dir) / "replicates.json").read_text())
    assert [r["index"] for r in summary["replicates"]] == [0, 1]
    for i in range(2):
        child = Path(cfg.output_dir) / "replicates" / str(i)
        child_result = json.loads((child / "metrics.json").read_text())
        assert child_result["tags"]["measure.replicate_index"] == str(i)
        assert child_result["denoise_s"] == pytest.approx(per_replicate[i])
    assert outcome.result.outputs and Path(outcome.result.outputs[0]).is_file()


def test_a_failing_replicate_fails_the_run_with_its_log(make_config, mlflow_client):
    cfg = make_config(
        "engine.device=cpu", "measure.replicates=2", "model.path=/nonexistent/tiny", "model.weights=pretrained"
    )
    with pytest.raises(Exception, match="replicate 0 exited"):
        execute(cfg, cfg.output_dir)
    [run] = mlflow_client.search_runs([mlflow_client.get_experiment_by_name(cfg.model.name).experiment_id])
    assert run.info.status == "FAILED"
