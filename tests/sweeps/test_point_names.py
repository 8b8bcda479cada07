"""Sweep points are named by their swept values, and only the reference point is the sweep's reference."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from sweep_helpers import run_sweep

pytestmark = pytest.mark.slow


def test_points_named_by_swept_values_and_one_reference(tmp_path):
    sweep = run_sweep(
        ["engine.device=cpu", "model.sampling.num_inference_steps=2", "model.sampling.seed=1,2,3"],
        tmp_path,
        f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    client = MlflowClient(sweep.uri)
    parent = client.get_run(sweep.info.run_id)
    points = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_point = {int(p.data.tags["sweep.point"]): p for p in points}
    assert [by_point[i].info.run_name for i in range(3)] == [f"tiny_flux · seed={i}" for i in (1, 2, 3)]
    assert [by_point[i].data.params["tracking.run_name"] for i in range(3)] == [
        f"tiny_flux · seed={i}" for i in (1, 2, 3)
    ]
    roles = [by_point[i].data.tags.get("review.role") for i in range(3)]
    assert roles == ["reference", None, None], roles
