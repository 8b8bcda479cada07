"""`python -m diffexp` records its run from a tracking agent (diffexp/run/agent.py): the same record as in-process,
a run whose process dies is ended by the agent, a store that cannot work is refused before the model loads, and no
agent outlives its run. Real processes, signals and a real SQLite store."""

from __future__ import annotations

import json
import signal
import time

import psutil
import pytest
from mlflow import MlflowClient

from diffexp import names, rundir
from tests.conftest import artifact_paths, run_cli, start_cli, wait_for_run_log


def _agents() -> list[psutil.Process]:
    """Tracking agents of this test session's children (and their children)."""
    me = psutil.Process()
    return [p for p in me.children(recursive=True) if "diffexp.run.agent" in " ".join(p.cmdline())]


def _only_run(client: MlflowClient):
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return run


def test_the_agents_record_is_the_runs_and_it_leaves_with_the_run(tmp_path):
    import torch

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = run_cli(["diffexp", f"tracking.uri={uri}"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(uri)
    run = _only_run(client)
    assert run.info.status == "FINISHED"
    # The writer's pid is the agent's, which has ended: the run's process did not wait on a child left behind.
    assert not psutil.pid_exists(int(run.data.tags[names.PID])) and not _agents()
    assert run.data.tags["cuda"] == (torch.version.cuda or "none")  # read without importing torch in the agent
    assert run.data.params["model.name"] == "tiny_flux" and run.data.metrics["denoise_s"] > 0
    [run_dir] = [p.parent for p in (tmp_path / "outputs").rglob(rundir.CONFIG_YAML) if ".hydra" not in p.parts]
    handed_over = json.loads((run_dir / rundir.METRICS_JSON).read_text())  # what the agent was given, kept
    assert handed_over["denoise_s"] == pytest.approx(run.data.metrics["denoise_s"])
    logged = artifact_paths(client, run.info.run_id)
    assert {"config.yaml", "prompt.txt", "run.log"} <= set(logged) and any(p.endswith(".png") for p in logged)
    log = (run_dir / rundir.RUN_LOG).read_text()
    assert "MLflow run" in log and "measured generations" in log  # both processes' lines, in one file
    assert f"run {run.info.run_id}" in done.stdout


def test_a_run_process_killed_outright_is_ended_failed_by_its_agent(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = start_cli(["diffexp", "model.sampling.num_inference_steps=100000", f"tracking.uri={uri}"], tmp_path)
    try:
        wait_for_run_log(tmp_path, "measured generation")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    client = MlflowClient(uri)
    deadline = time.time() + 60
    while (run := _only_run(client)).info.status == "RUNNING" and time.time() < deadline:
        time.sleep(0.3)
    assert run.info.status == "FAILED"
    assert f"process (pid {proc.pid}) ended without reporting its result" in run.data.tags[names.ERROR]
    assert "run.log" in artifact_paths(client, run.info.run_id)
    deadline = time.time() + 30
    while psutil.pid_exists(int(run.data.tags[names.PID])) and time.time() < deadline:
        time.sleep(0.2)
    assert not psutil.pid_exists(int(run.data.tags[names.PID]))


def test_an_unusable_store_is_refused_before_the_model_loads_and_no_agent_stays(tmp_path):
    (tmp_path / "a_file").write_text("")  # a folder under a file cannot be made, whoever runs the test
    start = time.monotonic()
    done = run_cli(["diffexp", f"tracking.uri=sqlite:///{tmp_path / 'a_file' / 'store' / 'mlflow.db'}"], tmp_path)
    took = time.monotonic() - start
    assert done.returncode == 2, done.stderr[-3000:]
    said = done.stdout + done.stderr
    assert "tracking.uri=" in said and "cannot create the store's folder" in said, said[-3000:]
    assert "loading tiny_flux" not in said and took < 120
    assert not _agents()


def test_a_store_that_is_not_a_database_is_refused_with_no_run_and_no_agent(tmp_path):
    store = tmp_path / "mlflow.db"
    store.write_text("not a database")
    done = run_cli(["diffexp", f"tracking.uri=sqlite:///{store}"], tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    said = done.stdout + done.stderr
    assert "cannot create the run" in said and "loading tiny_flux" not in said, said[-3000:]
    assert not _agents()
