"""Correctness review of tiny_wan videos: per-frame figures as step series, worst and mean frame."""

from __future__ import annotations

import numpy as np
import pytest

from diffexp.review import review_logged_run
from diffexp.review.media import find_outputs, read_frames
from diffexp.review.metrics import PSNR_CAP_DB

pytestmark = pytest.mark.slow

FRAMES = 9  # conf/model/tiny_wan.yaml
PERTURBED_FRAME = 5


@pytest.fixture(scope="module")
def wan(store):
    """w1: no reference; w2: the same config, reference w1 by run id."""
    store.execute("w1", "model=tiny_wan")
    store.execute("w2", "model=tiny_wan", f"review.reference={store.run_id('w1')}")
    return store


def series(client, run_id: str, key: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_identical_video_passes_with_per_frame_figures(wan):
    run = wan.run("w2")
    metrics = run.data.metrics
    assert run.data.tags["correctness"] == "pass"
    assert run.data.tags["review.reference_run_id"] == wan.run_id("w1")
    assert metrics["review.worst_frame_psnr_db"] == PSNR_CAP_DB
    assert metrics["review.mean_frame_psnr_db"] == PSNR_CAP_DB
    assert metrics["review.worst_frame_ssim"] == 1.0 and metrics["review.mean_frame_ssim"] == 1.0
    assert metrics["review.frames_compared"] == FRAMES
    assert series(wan.client, run.info.run_id, "review.frame_psnr_db") == [PSNR_CAP_DB] * FRAMES
    assert series(wan.client, run.info.run_id, "review.frame_max_abs_diff") == [0.0] * FRAMES
    assert wan.review_artifacts("w2") == {"review/video_000.diff_heatmap.png", "review/video_000.side_by_side.png"}


def test_one_perturbed_frame_fails_and_is_the_worst(wan, tmp_path):
    frames = read_frames(find_outputs([wan.output("w1", "video_000.frames.npz")])["video_000"])
    assert frames.shape == (FRAMES, 32, 32, 3) and frames.dtype == np.uint8
    perturbed = frames.copy()
    perturbed[PERTURBED_FRAME, :8, :8] = 255 - perturbed[PERTURBED_FRAME, :8, :8]
    reference = tmp_path / "video_000.frames.npz"
    np.savez_compressed(reference, frames=perturbed)

    outcome = review_logged_run(wan.client, wan.run_id("w1"), reference=str(reference))
    assert outcome.verdict == "fail"
    psnr = series(wan.client, wan.run_id("w1"), "review.frame_psnr_db")
    assert len(psnr) == FRAMES
    assert psnr.index(min(psnr)) == PERTURBED_FRAME
    assert [p for i, p in enumerate(psnr) if i != PERTURBED_FRAME] == [PSNR_CAP_DB] * (FRAMES - 1)
    metrics = wan.run("w1").data.metrics
    assert metrics["review.worst_frame_psnr_db"] == min(psnr) < 40
    assert metrics["review.mean_frame_psnr_db"] == pytest.approx(np.mean(psnr))
    assert "worst-frame PSNR" in wan.run("w1").data.tags["review.failed"]


def test_encoded_mp4_reads_as_frames(wan):
    # Engines that only write an MP4 (SGLang) are still reviewable, within the codec's loss.
    mp4 = find_outputs([wan.output("w1", "video_000.mp4")])["video_000"]
    assert mp4.rank > find_outputs([wan.output("w1", "video_000.frames.npz")])["video_000"].rank
    assert read_frames(mp4).shape == (FRAMES, 32, 32, 3)
