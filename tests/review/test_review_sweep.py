"""In a sweep the baseline (or first) point is the reference of the others; the review CLI after the fact."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from diffexp.review import is_sweep_reference, reference_for_sweep, resolve_reference, verdict_label
from diffexp.tracking.queries import get_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(store):
    """A parent run and two points: p1 marked baseline (default reference), p2 with sweep:baseline."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store.uri)
    experiment = client.create_experiment("sweep", artifact_location=(store.root / "artifacts").as_uri())
    store.parent_run_id = client.create_run(experiment, run_name="sweep parent").info.run_id
    store.execute("p1", "review.baseline=true", parent_run_id=store.parent_run_id)
    store.execute("p2", "review.reference=sweep:baseline", parent_run_id=store.parent_run_id)
    return store


def test_first_point_is_the_sweep_reference(sweep):
    tags = sweep.run("p1").data.tags
    assert tags["correctness"] == "unchecked"
    assert is_sweep_reference(tags)
    assert tags["review.baseline"] == "true"
    assert verdict_label(tags) == "unchecked (the sweep's reference)"


def test_other_point_is_compared_with_the_baseline(sweep):
    tags = sweep.run("p2").data.tags
    assert tags["correctness"] == "pass"
    assert tags["review.reference"] == "sweep:baseline"
    assert tags["review.reference_run_id"] == sweep.run_id("p1")


def test_reference_for_sweep_and_default_reference_in_a_sweep(sweep):
    client = sweep.client
    p2 = get_run(client, sweep.run_id("p2"))
    assert reference_for_sweep(client, sweep.parent_run_id, p2, "first").run_id == sweep.run_id("p1")
    assert reference_for_sweep(client, sweep.parent_run_id, p2, "baseline").run_id == sweep.run_id("p1")
    p1 = get_run(client, sweep.run_id("p1"))
    assert reference_for_sweep(client, sweep.parent_run_id, p1, "first") is None
    assert reference_for_sweep(client, sweep.parent_run_id, p1, "auto") is None
    # review.reference unset inside a sweep means `sweep`: the baseline point, else the first.
    assert resolve_reference(client, None, p2).run.run_id == sweep.run_id("p1")
    assert resolve_reference(client, None, p1).is_sweep_reference


def test_review_cli_after_the_fact(sweep):
    # p1 (the sweep's reference, unchecked) reviewed afterwards against p2 by run id; a missing run beside it.
    missing = "0" * 32
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "diffexp.review",
            sweep.run_id("p1"),
            missing,
            "--reference",
            sweep.run_id("p2"),
            "--tracking-uri",
            sweep.uri,
        ],
        capture_output=True,
        text=True,
        cwd=sweep.root,
        timeout=300,
    )
    assert "correctness pass" in done.stdout, done.stdout + done.stderr
    assert f"MLflow run '{missing}' not found" in done.stderr
    assert done.returncode == 2  # not every run passed
    run = sweep.run("p1")
    assert run.data.tags["correctness"] == "pass"
    assert run.data.tags["review.reference_run_id"] == sweep.run_id("p2")
    assert "review.role" not in run.data.tags
    assert run.data.metrics["review.psnr_db"] == 100.0


def test_review_cli_reads_the_store_from_the_environment(sweep, tmp_path):
    """Like every reading command: no --tracking-uri, $MLFLOW_TRACKING_URI names the store (cwd has none)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": sweep.uri}
    done = subprocess.run(
        [sys.executable, "-m", "diffexp.review", sweep.run_id("p1"), "--reference", sweep.run_id("p2")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0 and "correctness pass" in done.stdout, done.stdout + done.stderr
    assert not (tmp_path / "mlruns").exists()
