"""Points as separate processes (submitit's local executor): the jobs find their parent through the sweep dir.

Needs the `slurm` extra and takes minutes on 2 CPU cores: runs only with DIFFEXP_TEST_SUBMITIT=1.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
from mlflow import MlflowClient
from sweep_helpers import run_sweep


def _submitit_installed() -> bool:
    # find_spec of a dotted name imports the parent first: with no Hydra plugin installed at all,
    # `hydra_plugins` itself is missing and find_spec raises instead of returning None.
    try:
        return importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None
    except ModuleNotFoundError:
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _submitit_installed(), reason="needs the slurm extra"),
    pytest.mark.skipif(os.environ.get("DIFFEXP_TEST_SUBMITIT") != "1", reason="set DIFFEXP_TEST_SUBMITIT=1 (slow)"),
]


def test_points_in_other_processes_are_children_of_the_parent(tmp_path):
    sweep = run_sweep(
        ["+sweep=tiny_smoke", "model=tiny_flux", "hydra/launcher=local_gpus"],
        tmp_path,
        f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    client = MlflowClient(sweep.uri)
    parent = client.get_run(sweep.info.run_id)
    assert (parent.data.tags["sweep.passed"], parent.data.tags["sweep.failed"]) == ("2", "0")
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(c.data.tags["sweep.point"] for c in children) == ["0", "1"]
    assert (sweep.sweep_dir / ".submitit").is_dir()  # they really ran through submitit
