"""Ctrl-C pressed again while a run is being ended: the run still ends KILLED with its log and traceback, exit 130."""

from __future__ import annotations

import signal
import time

from mlflow import MlflowClient

from tests.conftest import artifact_paths, start_cli, wait_for_run_log


def test_repeated_sigint_keeps_the_run_log_and_traceback(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = start_cli(["diffexp", "model.sampling.num_inference_steps=100000", f"tracking.uri={uri}"], tmp_path)
    try:
        wait_for_run_log(tmp_path, "measured generation")
        deadline = time.time() + 180
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        # An impatient user: Ctrl-C again and again while the run's end is being written.
        while proc.poll() is None and time.time() < deadline + 60:
            time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-3000:]
    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("tiny_flux").experiment_id])
    assert run.info.status == "KILLED", out[-3000:]
    artifacts = artifact_paths(client, run.info.run_id)
    assert "run.log" in artifacts and "traceback.txt" in artifacts, (artifacts, out[-3000:])
    [log] = list((tmp_path / "outputs").rglob("run.log"))
    assert "KeyboardInterrupt" in log.read_text()  # the traceback is in the run directory too
