"""`tiny_smoke` as CI runs it: a real `python -m diffexp -m +sweep=tiny_smoke` into a SQLite store."""

from __future__ import annotations

import csv
import io
import json

import pytest
from mlflow import MlflowClient

from diffexp.reports.charts import CHARTS_HTML
from diffexp.reports.summary import FASTEST
from diffexp.reports.sweep_report import SUMMARY_DIR

pytestmark = pytest.mark.slow


def _children(client: MlflowClient, info):
    exp = client.get_experiment_by_name(info.experiment)
    return client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{info.run_id}'")


def test_one_parent_and_a_child_per_point(tiny_sweep):
    client = MlflowClient(tiny_sweep.uri)
    parent = client.get_run(tiny_sweep.info.run_id)
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags["sweep"] == "tiny_smoke" and tags["sweep.role"] == "parent"
    assert tags["sweep.dir"] == str(tiny_sweep.sweep_dir.resolve())
    assert "model=tiny_flux,tiny_wan" in json.loads(tags["sweep.overrides"])
    assert json.loads(tags["sweep.keys"]) == ["model", "model.sampling.num_inference_steps"]
    assert (tags["sweep.points"], tags["sweep.passed"], tags["sweep.failed"]) == ("4", "4", "0")
    assert parent.data.metrics["points_failed"] == 0

    children = _children(client, tiny_sweep.info)
    assert len(children) == 4
    assert sorted(int(c.data.tags["sweep.point"]) for c in children) == [0, 1, 2, 3]
    seen = set()
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.info.experiment_id == parent.info.experiment_id  # nested in the UI
        chosen = dict(o.split("=", 1) for o in json.loads(child.data.tags["sweep.overrides"]))
        # The swept keys are separate params with the point's values.
        assert child.data.params["model.name"] == chosen["model"]
        assert child.data.params["model.sampling.num_inference_steps"] == chosen["model.sampling.num_inference_steps"]
        assert child.data.tags["sweep"] == "tiny_smoke"
        assert child.data.tags["sweep.baseline"] == ("true" if child.data.tags["sweep.point"] == "0" else "false")
        assert {"denoise_s", "e2e_s", "peak_mem_gib", "denoise_step_ms"} <= set(child.data.metrics)
        steps = client.get_metric_history(child.info.run_id, "denoise_step_ms_series")
        assert len(steps) == int(chosen["model.sampling.num_inference_steps"])
        seen.add((chosen["model"], chosen["model.sampling.num_inference_steps"]))
    assert len(seen) == 4


def test_summary_artifacts_hold_the_childrens_numbers(tiny_sweep, tmp_path):
    client = MlflowClient(tiny_sweep.uri)
    run_id = tiny_sweep.info.run_id
    listed = {a.path for a in client.list_artifacts(run_id, SUMMARY_DIR)}
    assert {f"{SUMMARY_DIR}/summary.csv", f"{SUMMARY_DIR}/summary.md", f"{SUMMARY_DIR}/charts"} <= listed
    local = client.download_artifacts(run_id, SUMMARY_DIR, str(tmp_path))
    html = (tmp_path / SUMMARY_DIR / "charts" / CHARTS_HTML).read_text()
    for chart in ("denoise_per_point", "memory_vs_latency", "step_latency"):
        assert f'id="{chart}"' in html
    assert "Pareto front" in html

    rows = list(csv.DictReader(io.StringIO((tmp_path / SUMMARY_DIR / "summary.csv").read_text())))
    assert len(rows) == 4
    by_id = {c.info.run_id: c for c in _children(client, tiny_sweep.info)}
    for row in rows:
        metrics = by_id[row["Run ID"]].data.metrics
        assert float(row["Denoise (s) ★"]) == metrics["denoise_s"]
        assert float(row["Step (ms)"]) == metrics["denoise_step_ms"]
        assert float(row["E2E (s)"]) == metrics["e2e_s"]
        assert float(row["Peak Mem (GiB)"]) == metrics["peak_mem_gib"]
        assert row["Status"] == "FINISHED" and row["Correctness"] in ("pass", "fail", "unchecked")
        assert row["GPU"] == "CPU" and row["Task"] in ("T2I", "T2V")
    fastest = min(rows, key=lambda r: float(r["Denoise (s) ★"]))
    assert [r["Fastest"] for r in rows].count(FASTEST) == 1 and fastest["Fastest"] == FASTEST
    assert client.get_run(run_id).data.tags["sweep.fastest"] == fastest["Run ID"]
    markdown = (tmp_path / SUMMARY_DIR / "summary.md").read_text()
    assert (
        "| Model | Task | Steps | Resolution | Denoise (s) ★ | Step (ms) | E2E (s) | Peak Mem (GiB) | SGLang Ver | GPU |"
        in markdown
    )
    assert local


def test_rebuilt_report_equals_the_logged_one(tiny_sweep, tmp_path):
    from diffexp.report import main

    logged = tmp_path / "logged"
    MlflowClient(tiny_sweep.uri).download_artifacts(tiny_sweep.info.run_id, SUMMARY_DIR, str(logged))
    for ref in (tiny_sweep.info.run_id, f"tiny_smoke · {tiny_sweep.sweep_dir.name}", "tiny_smoke"):
        out = tmp_path / "rebuilt"
        assert main(["--tracking-uri", tiny_sweep.uri, "sweep", ref, "--out", str(out)]) == 0
        for name in ("summary.csv", "summary.md"):
            assert (out / name).read_text() == (logged / SUMMARY_DIR / name).read_text()
        assert (out / "charts" / CHARTS_HTML).is_file()
