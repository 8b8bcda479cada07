"""An untracked sweep (a GPU box without MLflow) uploaded with `python -m diffexp.sweeps.upload` is the sweep the
live callback records: the same parent (name, params, swept keys, counts, summary), the same children (names, point
tags, baseline, correctness review against the sweep's reference). Both sweeps run here for real, on CPU, with the
tiny FLUX (2 points), into two real MLflow stores."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from diffexp import names
from tests.conftest import cli_env

pytestmark = pytest.mark.slow  # two sweeps of two points, each point a tiny pipeline on CPU
SWEEP = ["+sweep=tiny_smoke", "model=tiny_flux"]
# What a point is: the same in both stores.
POINT_TAGS = (names.SWEEP, names.SWEEP_ROLE, names.SWEEP_POINT, names.SWEEP_BASELINE, names.SWEEP_OVERRIDES)
PARENT_TAGS = (names.SWEEP, names.SWEEP_ROLE, names.SWEEP_KEYS, "sweep.points", "sweep.passed", "sweep.failed")


def python(tmp, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=tmp, env=cli_env(), capture_output=True, text=True, timeout=900
    )


def sweep_of(client: MlflowClient) -> tuple[object, list]:
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    [parent] = [r for r in runs if r.data.tags.get(names.SWEEP_ROLE) == "parent"]
    points = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, sorted(points, key=lambda r: int(r.data.tags[names.SWEEP_POINT]))


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("upload")
    live_uri, uploaded_uri = f"sqlite:///{tmp / 'live.db'}", f"sqlite:///{tmp / 'uploaded.db'}"
    live = python(tmp, "diffexp", "-m", *SWEEP, f"tracking.uri={live_uri}", f"hydra.sweep.dir={tmp / 'live'}")
    assert live.returncode == 0, live.stdout[-3000:] + live.stderr[-3000:]
    untracked = python(tmp, "diffexp", "-m", *SWEEP, "tracking.enabled=false", f"hydra.sweep.dir={tmp / 'box'}")
    assert untracked.returncode == 0, untracked.stdout[-3000:] + untracked.stderr[-3000:]
    uploaded = python(tmp, "diffexp.sweeps.upload", str(tmp / "box"), "--tracking-uri", uploaded_uri)
    assert uploaded.returncode == 0, uploaded.stdout[-3000:] + uploaded.stderr[-3000:]
    return tmp, MlflowClient(live_uri), MlflowClient(uploaded_uri), uploaded


def test_the_uploaded_sweep_is_the_one_the_live_sweep_records(sweeps):
    _, live_client, uploaded_client, uploaded = sweeps
    (live, live_points), (parent, points) = sweep_of(live_client), sweep_of(uploaded_client)
    assert parent.info.status == "FINISHED" and f"sweep parent run {parent.info.run_id}" in uploaded.stdout
    assert {k: parent.data.tags.get(k) for k in PARENT_TAGS} == {k: live.data.tags.get(k) for k in PARENT_TAGS}
    assert json.loads(parent.data.tags[names.SWEEP_KEYS]) == ["model.sampling.num_inference_steps"]
    assert parent.data.params == live.data.params and parent.data.tags["sweep.passed"] == "2"
    assert live_client.get_experiment(live.info.experiment_id).name == "sweep-tiny_smoke"
    assert uploaded_client.get_experiment(parent.info.experiment_id).name == "sweep-tiny_smoke"
    assert [p.info.run_name for p in points] == [p.info.run_name for p in live_points]
    for got, want in zip(points, live_points, strict=True):
        assert got.info.status == want.info.status == "FINISHED"
        assert {k: got.data.tags.get(k) for k in POINT_TAGS} == {k: want.data.tags.get(k) for k in POINT_TAGS}
        assert got.data.params["review.baseline"] == want.data.params["review.baseline"]
        # the review against the sweep's reference reached the same verdict and note
        assert got.data.tags.get(names.CORRECTNESS) == want.data.tags.get(names.CORRECTNESS)
        assert got.data.metrics["denoise_s"] > 0
    summary = {a.path for a in uploaded_client.list_artifacts(parent.info.run_id, "summary")}
    assert {"summary/summary.csv", "summary/summary.md"} <= summary


def test_a_point_without_figures_is_a_failed_child_and_the_upload_exits_1(sweeps, tmp_path):
    tmp = sweeps[0]
    box = tmp_path / "box"
    shutil.copytree(tmp / "box", box)
    (box / "1" / "metrics.json").unlink()  # the point was cut before it wrote its figures
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = python(tmp_path, "diffexp.sweeps.upload", str(box), "--tracking-uri", uri)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    parent, points = sweep_of(MlflowClient(uri))
    assert [p.info.status for p in points] == ["FINISHED", "FAILED"]
    assert "no metrics.json: the point did not finish" in points[1].data.tags[names.ERROR]
    assert points[1].data.tags[names.SWEEP_POINT] == "1" and parent.data.tags["sweep.failed"] == "1"


def test_a_sweep_folder_is_refused_as_a_run_and_a_run_folder_as_a_sweep(sweeps, tmp_path):
    tmp = sweeps[0]
    as_run = python(tmp_path, "diffexp.upload", str(tmp / "box"), "--tracking-uri", f"sqlite:///{tmp_path / 'a.db'}")
    assert as_run.returncode == 2 and "a sweep's folder: log it with python -m diffexp.sweeps.upload" in as_run.stderr
    as_sweep = python(tmp_path, "diffexp.sweeps.upload", str(tmp / "box" / "0"))
    assert as_sweep.returncode == 2 and "not a sweep's folder (no multirun.yaml" in as_sweep.stderr
    assert not (tmp_path / "mlruns").exists()


def test_a_sweep_the_store_holds_is_not_logged_twice(sweeps):
    tmp, _, uploaded_client, first = sweeps
    parent, _ = sweep_of(uploaded_client)
    uri = uploaded_client.tracking_uri
    second = python(tmp, "diffexp.sweeps.upload", str(tmp / "box"), "--tracking-uri", uri)
    assert second.returncode == 0 and f"sweep parent run {parent.info.run_id}" in second.stdout
    assert "already in the store as sweep parent" in second.stderr
    assert sweep_of(uploaded_client)[0].info.run_id == parent.info.run_id  # still one parent
