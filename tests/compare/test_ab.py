"""`python -m diffexp.ab` end to end on the real tiny FLUX (CPU): two interleaved rounds of fresh processes,
4 vs 16 denoise steps, recorded as one MLflow parent run with a child per process."""

from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest

from diffexp.ab import main
from tests.conftest import as_on_a_gpu_box, cli_env

pytestmark = pytest.mark.slow  # four fresh processes, each importing torch and diffusers


def test_ab_two_rounds_interleaved_and_recorded(tmp_path, mlflow_uri, mlflow_client, capsys, monkeypatch):
    # One intra-op thread per process and a warmup generation: on cores shared with other jobs, a first
    # generation in a fresh two-thread process can take longer at 4 steps than a warm one at 16.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = set(psutil.Process().children(recursive=True))
    code = main(
        [
            "--base", "model.sampling.num_inference_steps=4",
            "--candidate", "model.sampling.num_inference_steps=16",
            "--rounds", "2",
            "--out", str(tmp_path / "ab"),
            "engine.device=cpu",
            "compile.warmup=true",
            "measure.repeats=3",
            f"tracking.uri={mlflow_uri}",
        ]
    )  # fmt: skip
    assert set(psutil.Process().children(recursive=True)) <= before
    result = json.loads((tmp_path / "ab" / "ab.json").read_text())
    assert [r["round"] for r in result["rounds"]] == [0, 1]
    assert all(r["ratio"] > 1.5 for r in result["rounds"])  # 4x the steps, paired round by round
    assert result["verdict"] == "slower" and code == 1
    assert result["ci95_low_pct"] <= result["delta_pct"] <= result["ci95_high_pct"]
    assert "→ slower" in " ".join(capsys.readouterr().out.split())

    # AB, then BA: in each round the second process started after the first had finished, and the order alternates.
    assert [r["first"] for r in result["rounds"]] == ["base", "candidate"]
    for r, (first, second) in enumerate([("base", "candidate"), ("candidate", "base")]):
        round_dir = tmp_path / "ab" / f"round{r}"
        assert (round_dir / first / "metrics.json").stat().st_mtime <= (
            round_dir / second / "config.yaml"
        ).stat().st_mtime

    [exp] = [e for e in mlflow_client.search_experiments() if e.name == "tiny_flux"]
    runs = mlflow_client.search_runs([exp.experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("diffexp.role") == "ab"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted((r.data.tags["ab.round"], r.data.tags["ab.side"]) for r in children) == [
        ("0", "base"), ("0", "candidate"), ("1", "base"), ("1", "candidate"),
    ]  # fmt: skip
    assert parent.data.tags["ab.verdict"] == "slower"
    assert parent.data.metrics["ab.delta_pct"] == pytest.approx(result["delta_pct"])
    assert all(r.info.status == "FINISHED" and "denoise_s" in r.data.metrics for r in children)


# Untracked use on a GPU box has no MLflow: importing it fails there, and must fail here too (2026-12-02 on the H200,
# `import diffexp.ab` reached MLflow through diffexp.compare's package import and the A/B never started).
def test_untracked_ab_runs_without_mlflow(tmp_path):
    out = tmp_path / "ab"
    proc = subprocess.run(
        [
            sys.executable, "-m", "diffexp.ab",
            "--base", "model.sampling.num_inference_steps=2",
            "--candidate", "model.sampling.num_inference_steps=3",
            "--rounds", "1", "--out", str(out),
            "engine.device=cpu", "tracking.enabled=false", "measure.repeats=2",
        ],
        capture_output=True, text=True, env=as_on_a_gpu_box(cli_env(), tmp_path), cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    result = json.loads((out / "ab.json").read_text())
    assert [r["round"] for r in result["rounds"]] == [0] and result["rounds"][0]["ratio"] > 0
    assert "noise unknown" in " ".join(proc.stdout.split())  # one paired round: no interval
    assert "mlflow" not in proc.stderr.lower()
