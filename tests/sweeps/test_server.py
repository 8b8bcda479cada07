"""Sweeps against a real `mlflow server` on loopback, checked through its REST API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sweep_helpers import rest, run_sweep

pytestmark = [pytest.mark.server, pytest.mark.slow]


def _experiment_id(url: str, name: str) -> str:
    return rest(url, f"/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}")["experiment"]["experiment_id"]


def _search(url: str, experiment_id: str, filter_string: str) -> list[dict]:
    body = {"experiment_ids": [experiment_id], "filter": filter_string, "max_results": 1000}
    return rest(url, "/api/2.0/mlflow/runs/search", body).get("runs", [])


def _as_dict(items: list[dict]) -> dict[str, str]:
    return {i["key"]: i["value"] for i in items}


def test_tiny_smoke_against_a_tracking_server(mlflow_server, tmp_path):
    sweep = run_sweep(["+sweep=tiny_smoke", "tracking=server"], tmp_path, mlflow_server)
    exp = _experiment_id(mlflow_server, sweep.info.experiment)
    parents = _search(mlflow_server, exp, "tags.`sweep.role` = 'parent'")
    assert [p["info"]["run_id"] for p in parents] == [sweep.info.run_id]
    parent_tags = _as_dict(parents[0]["data"]["tags"])
    assert parents[0]["info"]["status"] == "FINISHED"
    assert (parent_tags["sweep"], parent_tags["sweep.passed"], parent_tags["sweep.failed"]) == ("tiny_smoke", "4", "0")

    children = _search(mlflow_server, exp, f"tags.mlflow.parentRunId = '{sweep.info.run_id}'")
    assert len(children) == 4
    for child in children:
        params, tags = _as_dict(child["data"]["params"]), _as_dict(child["data"]["tags"])
        metrics = {m["key"]: m["value"] for m in child["data"]["metrics"]}
        chosen = dict(o.split("=", 1) for o in json.loads(tags["sweep.overrides"]))
        assert params["model.name"] == chosen["model"]
        assert params["model.sampling.num_inference_steps"] == chosen["model.sampling.num_inference_steps"]
        assert {"denoise_s", "e2e_s", "peak_mem_gib", "denoise_step_ms"} <= set(metrics)
        assert child["info"]["status"] == "FINISHED"

    listed = rest(mlflow_server, f"/api/2.0/mlflow/artifacts/list?run_id={sweep.info.run_id}&path=summary")
    assert {"summary/summary.csv", "summary/summary.md", "summary/charts"} <= {f["path"] for f in listed["files"]}


POINT = """
import json, sys
from pathlib import Path
from diffexp.config import compose, to_config
from diffexp.run import execute
url, experiment, parent, i, out = sys.argv[1:]
cfg = to_config(compose([
    "engine.device=cpu", f"model.sampling.num_inference_steps={2 + int(i) % 2}", "review.reference=off",
    f"tracking.uri={url}", f"tracking.experiment={experiment}", f"tracking.run_name=point{i}", f"output_dir={out}",
]))
outcome = execute(cfg, Path(out), parent_run_id=parent)
print("OUTCOME " + json.dumps({"run_id": outcome.run_id, "metrics": outcome.result.metrics(), "steps": outcome.result.denoise_step_ms}))
"""


def test_four_points_logging_at_once_lose_nothing(mlflow_server, tmp_path):
    """Four points run at once as separate processes (as a parallel launcher runs them), children of one parent."""
    from diffexp.tracking.writer import RunRecorder

    experiment = "concurrency"
    parent = RunRecorder(mlflow_server, experiment, "parent", params={}, tags={"sweep.role": "parent"})
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", POINT, mlflow_server, experiment, parent.run_id, str(i), str(tmp_path / str(i))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    outcomes = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        outcomes.append(json.loads(next(line for line in stdout.splitlines() if line.startswith("OUTCOME "))[8:]))
    with parent:
        pass
    exp = _experiment_id(mlflow_server, experiment)
    children = {
        c["info"]["run_id"]: c for c in _search(mlflow_server, exp, f"tags.mlflow.parentRunId = '{parent.run_id}'")
    }
    assert sorted(children) == sorted(o["run_id"] for o in outcomes)
    for outcome in outcomes:
        child = children[outcome["run_id"]]
        assert child["info"]["status"] == "FINISHED"
        logged = {m["key"]: m["value"] for m in child["data"]["metrics"]}
        assert {k: logged[k] for k in outcome["metrics"]} == pytest.approx(outcome["metrics"], rel=1e-12)
        history = rest(
            mlflow_server,
            f"/api/2.0/mlflow/metrics/get-history?run_id={outcome['run_id']}&metric_key=denoise_step_ms_series",
        )["metrics"]
        assert [m["value"] for m in sorted(history, key=lambda m: m["step"])] == pytest.approx(outcome["steps"])
