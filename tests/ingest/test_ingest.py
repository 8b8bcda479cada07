"""`python -m diffexp.ingest`: real recorded SGLang perf dumps into a real MLflow store in tmp_path."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from diffexp.config.schema import TrackingConfig
from diffexp.errors import DiffexpError
from diffexp.ingest import find_dumps, ingest, look_beside
from tests.conftest import cli_env

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sglang"


def copy_case(case: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / case, tmp_path / case))


def test_cli_ingests_a_dump_with_its_log_and_outputs(tmp_path):
    folder = copy_case("cpu_flux_warmup", tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "diffexp.ingest",
            str(folder / "perf_dump.json"),
            "--tracking-uri",
            uri,
            "--experiment",
            "nightly",
            "--tag",
            "gpu=cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = proc.stdout.strip().rsplit(" ", 1)[-1]
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "nightly"
    assert (
        run.data.tags["ingested"] == "true" and run.data.tags["gpu"] == "cpu" and run.data.tags["backend"] == "sglang"
    )
    assert run.data.tags["warmup_excluded"] == "true"
    assert run.data.metrics["denoise_s"] > 0 and run.data.metrics["log.warmup_excluded_s"] == 0.07
    series = client.get_metric_history(run_id, "denoise_step_ms_series")
    assert len(series) == 4
    artifacts = {a.path for a in client.list_artifacts(run_id)} | {
        a.path for a in client.list_artifacts(run_id, "outputs")
    }
    assert {"perf_dump.json", "sglang.log"} <= artifacts
    assert any(p.startswith("outputs/") and p.endswith(".png") for p in artifacts)


def test_fallback_dump_is_ingested_as_a_failed_run(tmp_path):
    folder = copy_case("cpu_flux_auto_fallback", tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = ingest(look_beside(folder / "perf_dump.json"), TrackingConfig(uri=uri))
    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["valid"] == "false" and run.data.tags["backend_fallback"] == "true"
    # Experiment named after the model in the dump's meta.
    assert MlflowClient(tracking_uri=uri).get_experiment(run.info.experiment_id).name == "tiny_flux-21334c23495d"


def test_folder_arguments_find_their_dumps_and_reject_empty_ones(tmp_path):
    folder = copy_case("cpu_flux_native", tmp_path)
    assert find_dumps([folder]) == [folder / "perf_dump.json"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DiffexpError, match="no SGLang perf dump"):
        find_dumps([tmp_path / "empty"])
