"""profile=torch in the in-process engine: a trace artifact with step, block and sub-part scopes."""

from __future__ import annotations

import gzip
import json

from diffexp.run import execute


def test_profiled_run_records_scoped_trace_and_is_tagged(make_config, mlflow_client, tmp_path):
    cfg = make_config("profile=torch", "profile.num_steps=2")
    outcome = execute(cfg, tmp_path / "run")
    run = mlflow_client.get_run(outcome.run_id)
    # Profiling changes latency: such figures are never benchmark numbers.
    assert run.data.tags["profiled"] == "true"
    [trace] = [a.path for a in mlflow_client.list_artifacts(outcome.run_id, "traces")]
    assert trace.endswith(".trace.json.gz")
    with gzip.open(mlflow_client.download_artifacts(outcome.run_id, trace)) as f:
        events = json.load(f)["traceEvents"]
    scopes = {e["name"] for e in events if e.get("cat") == "user_annotation"}
    # Only the first two of four steps are profiled.
    assert {"denoise_step_0", "denoise_step_1"} <= scopes and "denoise_step_2" not in scopes
    assert {
        "transformer_blocks.0",
        "transformer_blocks.0.attn",
        "transformer_blocks.0.norm",
        "transformer_blocks.0.mlp",
    } <= scopes
    assert {"single_transformer_blocks.1", "single_transformer_blocks.1.attn"} <= scopes
    # Block scopes nest inside step scopes: each block scope starts within some step scope.
    steps = [(e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name", "").startswith("denoise_step_")]
    blocks = [e for e in events if e.get("cat") == "user_annotation" and e["name"] == "transformer_blocks.0"]
    assert blocks and all(any(s <= b["ts"] <= end for s, end in steps) for b in blocks)
