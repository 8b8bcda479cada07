"""Parallel in-process runs on 2 CPU ranks (gloo) with the tiny models, through diffexp.run into a real MLflow store.

Each layout must reproduce the single-process video of the same seed; a rank that dies must end the run FAILED
with every rank's log attached and no process left behind.
"""

from __future__ import annotations

import numpy as np
import psutil
import pytest

from diffexp.run import execute
from tests.conftest import artifact_paths

pytestmark = pytest.mark.slow

# uint8 frames: sequence parallelism reorders float sums, so allow one level of rounding difference.
MAX_PIXEL_DIFF = 1


def frames_of(outcome) -> np.ndarray:
    [npz] = [p for p in outcome.result.outputs if p.endswith(".frames.npz")]
    return np.load(npz)["frames"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    return root, f"sqlite:///{root / 'mlflow.db'}"


def run_tiny_wan(store, name: str, *overrides: str):
    from diffexp.config import compose, to_config

    root, uri = store
    cfg = to_config(
        compose(["model=tiny_wan", "engine.device=cpu", *overrides, f"tracking.uri={uri}", f"output_dir={root / name}"])
    )
    return execute(cfg, root / name)


@pytest.fixture(scope="module")
def single(store):
    return run_tiny_wan(store, "single")


@pytest.mark.parametrize("layout", ["ulysses2", "cfg2"])
def test_two_rank_layout_matches_single_process_and_logs_every_rank(store, single, layout, monkeypatch):
    from mlflow import MlflowClient

    from diffexp import names
    from diffexp.review import PASS

    monkeypatch.setenv("NCCL_NVLS_ENABLE", "1")  # turned on where the run starts: every rank has it off
    outcome = run_tiny_wan(store, layout, f"parallel={layout}", f"review.reference={single.run_id}")
    assert outcome.status == "FINISHED"
    diff = np.abs(frames_of(outcome).astype(int) - frames_of(single).astype(int)).max()
    assert diff <= MAX_PIXEL_DIFF, f"{layout} differs from the single-process output by {diff}"

    client = MlflowClient(tracking_uri=store[1])
    run = client.get_run(outcome.run_id)
    metrics, tags = run.data.metrics, run.data.tags
    assert metrics["peak_mem_gib.rank0"] > 0 and metrics["peak_mem_gib.rank1"] > 0
    assert metrics["peak_mem_gib"] == max(metrics["peak_mem_gib.rank0"], metrics["peak_mem_gib.rank1"])
    assert metrics["denoise_s"] > 0 and len(client.get_metric_history(run.info.run_id, "denoise_step_ms_series")) == 4
    assert tags["parallel.backend"] == "gloo" and tags["parallel.ranks"] == "2"
    assert (
        tags["parallel.layout"]
        == {"ulysses2": "cfg 1 × ring 1 × ulysses 2", "cfg2": "cfg 2 × ring 1 × ulysses 1"}[layout]
    )
    assert {"ranks/rank0.log", "ranks/rank1.log", "outputs/video_000.frames.npz"} <= set(
        artifact_paths(client, run.info.run_id)
    )
    assert tags[names.CORRECTNESS] == PASS  # the correctness review agrees with the direct comparison
    off = "NVLink multicast off: NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1"
    for rank in (0, 1):
        assert off in (store[0] / layout / "ranks" / f"rank{rank}.log").read_text()


def test_a_dying_rank_fails_the_run_with_all_logs_and_leaves_no_process(store, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("DIFFEXP_TEST_FAIL_RANK", "1")
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    outcome = run_tiny_wan(store, "dying", "parallel=cfg2")
    assert outcome.status == "FAILED"
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= children_before
    run = MlflowClient(tracking_uri=store[1]).get_run(outcome.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["invalid_reason"].startswith("rank 1 exited with code 3")
    assert {"ranks/rank0.log", "ranks/rank1.log", "run.log"} <= set(
        artifact_paths(MlflowClient(tracking_uri=store[1]), outcome.run_id)
    )
    rank_log = (store[0] / "dying" / "ranks" / "rank1.log").read_text()
    assert "test fault injection" in rank_log
    # The failing rank's last lines land in the run's own log too.
    assert "test fault injection" in (store[0] / "dying" / "run.log").read_text()


def test_the_launcher_reads_rank0s_trace_after_the_ranks_exit(store):
    """profile=torch on 2 ranks: rank 0 writes its trace and exits with the others; the launcher analyses it."""
    outcome = run_tiny_wan(store, "profiled", "parallel=ulysses2", "profile=torch", "profile.num_steps=2")
    assert outcome.status == "FINISHED" and outcome.result.profiled
    run_dir = store[0] / "profiled"
    [trace] = (run_dir / "traces").glob("*rank0*.trace.json*")
    assert "trace_file" not in outcome.result.artifacts and outcome.result.artifacts["profile"] == str(
        run_dir / "profile"
    )
    # On CPU the trace has no GPU kernels: the analysis says so, in the launcher's log and not in rank 0's.
    skipped = "GPU-time analysis skipped"
    assert skipped in (run_dir / "run.log").read_text()
    assert skipped not in (run_dir / "ranks" / "rank0.log").read_text()
