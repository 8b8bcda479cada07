"""`python -m diffexp` as a user runs it: the default job, config errors, Ctrl-C and SIGTERM."""

from __future__ import annotations

import signal
import time

import pytest
from mlflow import MlflowClient

from tests.conftest import run_cli, start_cli, wait_for_run_log


def test_default_job_runs_and_says_where_it_logged(tmp_path):
    proc = run_cli(["diffexp"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "logged to sqlite:///" in proc.stdout and "mlflow ui --backend-store-uri" in proc.stdout
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("tiny_flux").experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["denoise_s"] > 0


def test_config_error_exits_nonzero_before_any_run(tmp_path):
    proc = run_cli(["diffexp", "parallel=ulysses2", "parallel.num_gpus=3"], tmp_path)
    assert proc.returncode == 2
    assert "parallel.num_gpus=3: must equal" in proc.stderr + proc.stdout
    assert not (tmp_path / "mlruns").exists()


def test_composition_error_exits_nonzero(tmp_path):
    proc = run_cli(["diffexp", "model.sampling.widht=3"], tmp_path)
    assert proc.returncode != 0 and "widht" in proc.stderr
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_marks_run_killed(tmp_path, sig):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = start_cli(["diffexp", "model.sampling.num_inference_steps=100000", f"tracking.uri={uri}"], tmp_path)
    # Interrupt once the measured generation is under way: the run exists by then (it is created before the model
    # loads). The client is made only after that: making one opens the store, and a raw MlflowClient does not take
    # the lock under which the run's tracking agent creates and migrates it (opened mid-migration it fails with
    # `no such column`).
    wait_for_run_log(tmp_path, "measured generation", timeout_s=120)
    client = MlflowClient(tracking_uri=uri)
    time.sleep(2)
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out[-2000:]
    [run] = client.search_runs([client.get_experiment_by_name("tiny_flux").experiment_id])
    assert run.info.status == "KILLED", out[-2000:]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"run.log", "traceback.txt"} <= names
