"""The one run writer: nothing between create_run and the end escapes the guard, and every run records the process
that owns it."""

from __future__ import annotations

import os

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from diffexp import names
from diffexp.tracking.writer import RunRecorder


def test_a_failure_while_logging_params_ends_the_run_failed_not_running(mlflow_uri):
    # MLflow refuses a param name with characters outside its set: the failure comes after create_run.
    with pytest.raises(MlflowException):
        RunRecorder(mlflow_uri, "guard", "r", {"no|pipes": "1"}, {})
    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("guard").experiment_id])
    assert run.info.status == "FAILED"
    assert names.ERROR in run.data.tags


def test_runs_record_their_pid_and_host_and_open_on_the_runs_view(mlflow_uri):
    with RunRecorder(mlflow_uri, "who", "r", {}, {}) as recorder:
        pass
    client = MlflowClient(mlflow_uri)
    run = client.get_run(recorder.run_id)
    assert run.data.tags[names.PID] == str(os.getpid())
    assert float(run.data.tags[names.PID_START]) > 0 and run.data.tags[names.HOST]
    experiment = client.get_experiment_by_name("who")
    assert experiment.tags[names.EXPERIMENT_KIND] == names.EXPERIMENT_KIND_RUNS


def test_a_read_only_artifact_store_still_records_the_error(tmp_path):
    """With artifacts unwritable, a failing run used to end FAILED with no error recorded."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with RunRecorder(uri, "ro", "warmup", {}, {}):  # creates the experiment and its artifact folder
        pass
    artifacts = tmp_path / "artifacts"
    # A file where the next run's artifact folder must go: no user (root included) can write under it.
    experiment = MlflowClient(uri).get_experiment_by_name("ro")
    with pytest.raises(RuntimeError):
        with RunRecorder(uri, "ro", "r", {}, {}) as recorder:
            blocker = artifacts / experiment.experiment_id / recorder.run_id
            blocker.parent.mkdir(parents=True, exist_ok=True)
            blocker.write_text("not a folder")
            raise RuntimeError("the engine broke")
    run = MlflowClient(uri).get_run(recorder.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags[names.ERROR] == "RuntimeError: the engine broke"
