"""`python -m diffexp.ab` end to end on the real tiny FLUX (CPU): two interleaved rounds of fresh processes,
4 vs 16 denoise steps, recorded as one MLflow parent run with a child per process."""

from __future__ import annotations

import json

import psutil
import pytest

from diffexp.ab import main

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

    # ABAB: each round's candidate process started after its baseline had finished.
    for r in range(2):
        round_dir = tmp_path / "ab" / f"round{r}"
        assert (round_dir / "base" / "metrics.json").stat().st_mtime <= (
            round_dir / "candidate" / "config.yaml"
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
