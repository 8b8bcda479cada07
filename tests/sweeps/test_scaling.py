"""A sweep over GPU counts with a baseline point gets each point's speed-up and scaling efficiency against it: a
real sweep of the tiny Wan, single process and Ulysses over 2 gloo ranks on CPU, 3 repeats each, into a real
MLflow store; the columns are recomputed here from the repeats each point logged."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from statistics import median

import pytest
from mlflow import MlflowClient

from diffexp import names
from tests.conftest import cli_env

pytestmark = pytest.mark.slow  # two tiny-model points, one of them two rank processes


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scaling")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    command = [
        sys.executable, "-m", "diffexp", "-m", "model=tiny_wan", "engine.device=cpu", "parallel=single,ulysses2",
        "+extra.sweep_baseline='parallel=single'", "measure.repeats=3", f"tracking.uri={uri}",
        f"hydra.sweep.dir={tmp / 'sweep'}",
    ]  # fmt: skip
    proc = subprocess.run(command, cwd=tmp, env=cli_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(uri)
    rows = list(csv.DictReader(io.StringIO((tmp / "sweep" / "summary" / "summary.csv").read_text())))
    return client, rows, proc.stdout


def repeats(client, run_id: str) -> list[float]:
    return [m.value for m in client.get_metric_history(run_id, "denoise_s_series")]


def test_each_point_scales_against_the_baseline_from_its_logged_repeats(sweep):
    client, rows, stdout = sweep
    base, point = rows
    assert (base["parallel"], base["Baseline"], point["parallel"]) == ("single", "yes", "ulysses2")
    assert (base["Speed-up ×"], base["Speed-up 95% CI"], base["Scaling eff. %"]) == ("1.0", "baseline", "100.0")
    b, p = repeats(client, base["Run ID"]), repeats(client, point["Run ID"])
    assert len(b) == len(p) == 3
    speedup = median(b) / median(p)
    assert float(point["Speed-up ×"]) == pytest.approx(speedup)
    assert float(point["Scaling eff. %"]) == pytest.approx(100 * speedup / 2)
    low, high = map(float, point["Speed-up 95% CI"].split("–"))
    assert low <= speedup <= high
    assert "scaling against point 0 (the baseline, 1 GPU(s))" in stdout
    assert client.get_run(point["Run ID"]).data.params["parallel.num_gpus"] == "2"


def test_a_sweep_on_one_gpu_count_has_no_scaling_columns(tmp_path):
    from diffexp.reports.summary import summarize
    from diffexp.tracking.records import get_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "diffexp", "-m", "+sweep=tiny_smoke", "model=tiny_flux", "model.sampling.num_inference_steps=2",
         f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    points = [get_run(client, r.info.run_id) for r in runs if r.data.tags.get(names.SWEEP_ROLE) == "point"]
    assert "Speed-up ×" not in summarize(points, []).columns
