"""The in-process engine's repeated trials on the real tiny FLUX pipeline (CPU), through diffexp.run into a real
MLflow store: per-repeat series and repeats.json, medians with intervals that contain them, warmup until stable."""

from __future__ import annotations

import json
from pathlib import Path

import grimp
import pytest

from diffexp.run import execute
from tests.conftest import artifact_paths


def test_repeats_are_kept_and_the_headline_is_their_median(make_config, mlflow_client):
    cfg = make_config(
        "engine.device=cpu",
        "measure.repeats=3",
        "measure.warmup_until_stable=true",
        "measure.max_warmup_runs=3",
        "measure.warmup_tolerance=0.5",
    )
    outcome = execute(cfg, cfg.output_dir)
    assert outcome.status == "FINISHED"
    run = mlflow_client.get_run(outcome.run_id)
    m, tags = run.data.metrics, run.data.tags
    history = sorted(mlflow_client.get_metric_history(outcome.run_id, "denoise_s_series"), key=lambda x: x.step)
    values = [h.value for h in history]
    assert [h.step for h in history] == [0, 1, 2]
    assert m["denoise_s"] == pytest.approx(sorted(values)[1])
    assert m["denoise_s.n"] == 3 and m["denoise_s.min"] == pytest.approx(min(values))
    assert m["denoise_s.ci95_low"] <= m["denoise_s"] <= m["denoise_s.ci95_high"]
    assert len(mlflow_client.get_metric_history(outcome.run_id, "e2e_s_series")) == 3
    assert tags["noise"] == "repeats=3" and tags["steady_state"] in ("steady", "slow_start")
    assert "steady_state.slow_leading_steps" in m
    # Warmup ran until two generations agreed (50 %: a shared CPU) or gave up at 3, and says which.
    assert tags["warmup.settled"] in ("true", "false") and 2 <= int(tags["warmup_runs"]) <= 3
    assert m["warmup_s"] > 0
    assert "repeats.json" in artifact_paths(mlflow_client, outcome.run_id)
    repeats = json.loads(Path(outcome.result.artifacts["repeats"]).read_text())
    assert [r["denoise_s"] for r in repeats] == pytest.approx(values)
    assert all(len(r["step_ms"]) == 4 for r in repeats)


def test_a_cpu_run_defaults_to_one_shot_tagged_noise_unknown(make_config):
    cfg = make_config("engine.device=cpu", "tracking.enabled=false")
    outcome = execute(cfg, cfg.output_dir)
    assert outcome.result.tags["noise"] == "unknown" and len(outcome.result.repeats) == 1
    assert "denoise_s.ci95_low" not in outcome.result.metrics()


def test_the_package_init_dispatches_and_nothing_imports_back_up():
    graph = grimp.build_graph("diffexp")
    dispatcher = "diffexp.engines.diffusers"
    callers = {"diffexp.engines.nsys_child"} | {m for m in graph.modules if m.startswith("diffexp.engines.distributed")}
    for module in callers:
        assert dispatcher not in graph.find_modules_directly_imported_by(module), module
    steps = graph.find_children(dispatcher)
    for step in steps:
        imported = graph.find_modules_directly_imported_by(step)
        assert dispatcher not in imported and not imported & callers, step
