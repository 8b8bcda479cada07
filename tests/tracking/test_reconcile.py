"""A run whose processes (the run's and its tracking agent) were SIGKILLed stays RUNNING in MLflow; `python -m diffexp.gc` (and the pass every new run
makes) ends it FAILED with the reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
from mlflow import MlflowClient

from diffexp import names
from diffexp.tracking.store import client_for

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _running_run(client: MlflowClient, deadline_s: float = 180):
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        for exp in client.search_experiments():
            runs = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'")
            if runs:
                return runs[0]
        time.sleep(0.5)
    raise AssertionError("no RUNNING run appeared")


def test_sigkill_mid_run_then_gc_ends_it_failed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    # Enough steps that the denoise loop is still going when the kill comes.
    proc = subprocess.Popen(
        [sys.executable, "-m", "diffexp", f"tracking.uri={uri}", "model.sampling.num_inference_steps=400"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = client_for(uri)  # under the lock the run's agent creates the store with: no migration race
        run = _running_run(client)
        # The writer is the run's tracking agent (diffexp/run/agent.py), a child of the run's process. Both killed
        # at once (a machine's OOM killer, `kill -9` on both): nobody is left to end the run.
        writer = int(run.data.tags[names.PID])
        assert writer != proc.pid and psutil.Process(writer).ppid() == proc.pid
        os.kill(writer, signal.SIGKILL)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert client.get_run(run.info.run_id).info.status == "RUNNING"  # what SIGKILL leaves behind

    listed = subprocess.run(
        [sys.executable, "-m", "diffexp.gc", "--dry-run", "--tracking-uri", uri],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0 and f"would end FAILED: run {run.info.run_id}" in listed.stdout
    assert client.get_run(run.info.run_id).info.status == "RUNNING"

    ended = subprocess.run(
        [sys.executable, "-m", "diffexp.gc", "--tracking-uri", uri],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ended.returncode == 0, ended.stderr
    after = client.get_run(run.info.run_id)
    assert after.info.status == "FAILED"
    assert after.data.tags[names.ERROR].startswith(f"reconciled: process {writer}")


def test_a_killed_process_not_yet_reaped_counts_as_dead():
    """A run's writer killed with its parent is a zombie until someone reaps it (PID 1 in a container may never):
    its run must still be found left RUNNING (CI on 2026-12-02 saw gc find nothing)."""
    import time

    import psutil

    from diffexp.tracking.reconcile import _same_process_alive

    child = subprocess.Popen(["sleep", "300"])
    try:
        started = f"{psutil.Process(child.pid).create_time():.3f}"
        assert _same_process_alive(str(child.pid), started)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.05)
        assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE  # killed, not reaped: still in the table
        assert not _same_process_alive(str(child.pid), started)
    finally:
        child.kill()
        child.wait()
