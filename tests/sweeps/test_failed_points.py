"""A sweep whose points fail at run time finishes, logs the others, and counts the failures."""

from __future__ import annotations

import csv
import io

import pytest
from mlflow import MlflowClient
from sweep_helpers import run_sweep

pytestmark = pytest.mark.slow


def test_failed_points_are_failed_children_and_the_sweep_goes_on(tmp_path):
    # Four points: (none, no image) runs; a missing input image fails before the run exists (launch check);
    # layerwise offload on CPU fails inside the engine, after the run was created.
    sweep = run_sweep(
        [
            "engine.device=cpu",
            "model.sampling.num_inference_steps=2",
            "offload=none,layerwise",
            "model.sampling.image_path=null,/nonexistent/cat.png",
        ],
        tmp_path,
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        returncode=1,  # points failed: the sweep says so in its exit status, after running them all
    )
    assert "3 sweep point(s) failed" in sweep.proc.stdout + sweep.proc.stderr
    client = MlflowClient(sweep.uri)
    parent = client.get_run(sweep.info.run_id)
    assert parent.info.status == "FINISHED"
    assert (parent.data.tags["sweep.passed"], parent.data.tags["sweep.failed"]) == ("1", "3")
    assert parent.data.tags["sweep"] == "multirun"

    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_point = {int(c.data.tags["sweep.point"]): c for c in children}
    assert sorted(by_point) == [0, 1, 2, 3]
    ok = [c for c in children if c.info.status == "FINISHED"]
    assert len(ok) == 1 and ok[0].data.params["offload.name"] == "none"
    assert "denoise_s" in ok[0].data.metrics
    for child in children:
        if child.info.status == "FINISHED":
            continue
        assert child.info.status == "FAILED"
        error = child.data.tags["error"]
        if child.data.params["model.sampling.image_path"] != "None":
            assert "no such file" in error  # before the run: recorded by the sweep job
        else:
            assert "offloading needs a CUDA device" in error  # inside the engine: recorded by execute
        assert "traceback.txt" in {a.path for a in client.list_artifacts(child.info.run_id)}

    summary = (sweep.sweep_dir / "summary" / "summary.csv").read_text()
    statuses = [row["Status"] for row in csv.DictReader(io.StringIO(summary))]
    assert statuses.count("FAILED") == 3 and statuses.count("FINISHED") == 1
