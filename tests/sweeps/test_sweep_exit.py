"""How a sweep ends: Ctrl-C / SIGTERM mid-sweep end the parent KILLED with what it has; failed points exit 1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient
from sweep_helpers import run_diffexp

from diffexp.errors import RunInterrupted

pytestmark = pytest.mark.slow


def _wait_for(predicate, timeout_s=300):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("timed out")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_sweep_ends_parent_killed_with_partial_summary(tmp_path, sig):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep_dir = tmp_path / "multirun" / "sweep"
    # Point 0 finishes in seconds; point 1 would run for hours: it is interrupted.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "diffexp",
            "-m",
            "engine.device=cpu",
            "model.sampling.num_inference_steps=2,100000",
            f"tracking.uri={uri}",
            f"hydra.sweep.dir={sweep_dir}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": ""},
    )
    point1_log = sweep_dir / "1" / "run.log"
    try:
        _wait_for(lambda: point1_log.is_file() and "measured generation" in point1_log.read_text())
        time.sleep(1)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-3000:]
    client = MlflowClient(uri)
    [parent] = client.search_runs(
        [client.get_experiment_by_name("sweep-multirun").experiment_id], "tags.`sweep.role` = 'parent'"
    )
    assert parent.info.status == "KILLED", out[-3000:]
    tags = parent.data.tags
    assert (tags["sweep.passed"], tags["sweep.failed"], tags["sweep.interrupted"]) == ("1", "1", "true")
    assert "summary/summary.csv" in {a.path for a in client.list_artifacts(parent.info.run_id, "summary")}
    statuses = sorted(
        c.info.status for c in client.search_runs([parent.info.experiment_id], "tags.`sweep.role` = 'point'")
    )
    assert statuses == ["FINISHED", "KILLED"]


def test_sigterm_between_points_raises_and_the_parent_ends_killed(tmp_path):
    """Between points no run has a handler: the sweep's own one turns SIGTERM into an interrupt."""
    from diffexp.config import compose
    from diffexp.sweeps.callback import SweepParentCallback, abandon_open_sweeps

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = compose([f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path / 'sweep'}"], return_hydra=True)
    callback = SweepParentCallback()
    previous = signal.getsignal(signal.SIGTERM)
    callback.on_multirun_start(config)
    try:
        with pytest.raises(RunInterrupted):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    finally:
        abandon_open_sweeps()
    assert signal.getsignal(signal.SIGTERM) is previous
    parent = MlflowClient(uri).get_run(callback.info.run_id)
    assert parent.info.status == "KILLED"
    assert (parent.data.tags["sweep.points"], parent.data.tags["sweep.interrupted"]) == ("0", "true")


def test_untracked_sweep_with_a_failed_point_exits_1(tmp_path):
    proc = run_diffexp(
        [
            "-m",
            "tracking.enabled=false",
            "model.sampling.num_inference_steps=2",
            "model.sampling.image_path=null,/x.png",
        ],
        tmp_path,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
