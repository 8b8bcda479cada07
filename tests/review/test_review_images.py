"""Correctness review of tiny_flux images, in a run and after the fact, against run ids, latest:<model> and paths."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from diffexp.errors import DiffexpError
from diffexp.review import review_logged_run, verdict_label, verdict_of
from diffexp.review.metrics import PSNR_CAP_DB
from diffexp.review.reference import resolve_reference
from diffexp.tracking.queries import get_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def flux(store):
    """a: no reference; b: same seed, reference latest:tiny_flux (→ a); c: seed 7, reference a (refused)."""
    store.execute("a")
    store.snapshots["a"] = dict(store.run("a").data.tags)
    store.execute("b", "review.reference=latest:tiny_flux")
    store.execute("c", "model.sampling.seed=7", f"review.reference={store.run_id('a')}")
    return store


def test_run_without_reference_is_unchecked(flux):
    tags = flux.snapshots["a"]
    assert tags["correctness"] == "unchecked"
    assert "no reference" in tags["review.note"]
    assert verdict_label(tags) == "unchecked (no reference (set review.reference))"


def test_same_seed_twice_passes_against_latest_of_model(flux):
    run = flux.run("b")
    assert run.info.status == "FINISHED"
    tags, metrics = run.data.tags, run.data.metrics
    assert verdict_of(run) == "pass"
    assert tags["review.reference"] == "latest:tiny_flux"
    assert tags["review.reference_run_id"] == flux.run_id("a")
    assert tags["review.bounds"] == "lossless: PSNR >= 40 dB, SSIM >= 0.98"
    # Identical on CPU: infinite PSNR, logged at the cap.
    assert metrics["review.psnr_db"] == PSNR_CAP_DB
    assert metrics["review.ssim"] == 1.0
    assert metrics["review.mean_abs_diff"] == 0.0 and metrics["review.max_abs_diff"] == 0.0
    assert metrics["denoise_s"] > 0
    assert flux.review_artifacts("b") == {"review/image_000.diff_heatmap.png", "review/image_000.side_by_side.png"}
    assert (flux.root / "b" / "review" / "image_000.side_by_side.png").is_file()


def test_reference_with_other_sampling_parameters_is_refused_and_the_run_kept(flux):
    run = flux.run("c")
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["correctness"] == "unchecked"
    assert tags["review.reference_run_id"] == flux.run_id("a")
    assert "model.sampling.seed: run '7', reference '42'" in tags["review.error"]
    assert "other sampling parameters" in tags["review.error"]
    # The run's own measurements are kept; no review figures are.
    assert run.data.metrics["denoise_s"] > 0 and run.data.metrics["e2e_s"] > 0
    assert not any(k.startswith("review.") for k in run.data.metrics)
    assert "correctness unchecked" in (flux.root / "c" / "run.log").read_text()


def test_latest_of_model_skips_runs_with_other_sampling_parameters(flux):
    # Newest first: c (seed 7) differs, b matches a's parameters.
    reference = resolve_reference(flux.client, "latest:tiny_flux", get_run(flux.client, flux.run_id("a")))
    assert reference.run.run_id == flux.run_id("b")
    with pytest.raises(DiffexpError, match="latest:tiny_wan: no FINISHED.*0 run"):
        resolve_reference(flux.client, "latest:tiny_wan", get_run(flux.client, flux.run_id("a")))


def test_different_seed_fails_with_the_figures_logged(flux):
    outcome = review_logged_run(flux.client, flux.run_id("a"), reference=str(flux.output("c", "image_000.png")))
    assert outcome.verdict == "fail"
    run = flux.run("a")
    assert run.data.tags["correctness"] == "fail"
    assert run.data.tags["review.params_checked"] == "false"
    assert "worst-frame PSNR" in run.data.tags["review.failed"]
    assert run.data.metrics["review.psnr_db"] < 40
    assert run.data.metrics["review.ssim"] < 0.98
    assert run.data.metrics["review.max_abs_diff"] > 0
    assert verdict_label(run).startswith("fail (worst-frame PSNR")


def test_perturbed_output_fails(flux, tmp_path):
    image = np.asarray(Image.open(flux.output("a", "image_000.png"))).copy()
    image[10:20, 10:20] = 255 - image[10:20, 10:20]
    perturbed = tmp_path / "perturbed.png"
    Image.fromarray(image).save(perturbed)
    outcome = review_logged_run(flux.client, flux.run_id("b"), reference=str(perturbed))
    assert outcome.verdict == "fail"
    assert outcome.figures["review.max_abs_diff"] > 0
    # 100 of 4096 pixels changed: most of the image still matches, so PSNR is finite but below the bound.
    assert 0 < outcome.figures["review.psnr_db"] < 40
    assert flux.run("b").data.tags["correctness"] == "fail"


def test_run_folder_reference_checks_sampling_parameters(flux):
    same = review_logged_run(flux.client, flux.run_id("b"), reference=str(flux.root / "a"))
    assert same.verdict == "pass" and same.params_checked
    other = review_logged_run(flux.client, flux.run_id("b"), reference=str(flux.root / "c"))
    assert other.verdict == "unchecked"
    assert "model.sampling.seed: run '42', reference '7'" in other.error


def test_missing_reference_unreadable_artifact_and_shape_mismatch_are_clear_errors(flux, tmp_path):
    run_id = flux.run_id("b")
    missing = review_logged_run(flux.client, run_id, reference="0" * 32)
    assert missing.verdict == "unchecked" and "not found" in missing.error
    assert flux.run("b").data.tags["review.error"] == missing.error

    garbage = tmp_path / "image_000.png"
    garbage.write_bytes(b"not a png")
    unreadable = review_logged_run(flux.client, run_id, reference=str(garbage))
    assert unreadable.verdict == "unchecked" and unreadable.error.startswith(f"cannot read {garbage}")

    small = tmp_path / "small.png"
    Image.open(flux.output("a", "image_000.png")).resize((32, 32)).save(small)
    mismatch = review_logged_run(flux.client, run_id, reference=str(small))
    assert mismatch.verdict == "unchecked"
    assert "shape mismatch, run is 1 frame(s) of 64x64x3 and the reference is 1 frame(s) of 32x32x3" in mismatch.error

    bogus = review_logged_run(flux.client, run_id, reference="no-such-thing")
    assert "not an MLflow run id" in bogus.error
    # Review errors never touch the run's status or measurements.
    run = flux.run("b")
    assert run.info.status == "FINISHED" and run.data.metrics["denoise_s"] > 0


def test_rereview_replaces_stale_review_tags(flux, tmp_path):
    folder = tmp_path / "ref"
    shutil.copytree(flux.root / "a" / "outputs", folder)
    review_logged_run(flux.client, flux.run_id("b"), reference="0" * 32)
    assert "review.error" in flux.run("b").data.tags
    outcome = review_logged_run(flux.client, flux.run_id("b"), reference=str(folder))
    tags = flux.run("b").data.tags
    assert outcome.verdict == "pass" and tags["correctness"] == "pass"
    assert "review.error" not in tags and "review.reference_run_id" not in tags
    assert tags["review.reference"] == str(folder)


def test_review_records_both_stacks_and_says_when_they_differ(flux):
    """The reference as if recorded on another stack (its version.torch tag rewritten in the real store):
    the verdict names the difference instead of crediting it to the change."""
    a, b = flux.run_id("a"), flux.run_id("b")
    ours = flux.run("b").data.tags["version.torch"]
    outcome = review_logged_run(flux.client, b, reference=a)
    tags = flux.run("b").data.tags
    assert outcome.verdict == "pass" and "review.stack_differs" not in tags
    assert f"torch={ours}" in tags["review.stack.run"] and tags["review.stack.reference"] == tags["review.stack.run"]
    flux.client.set_tag(a, "version.torch", "2.11.0")
    try:
        outcome = review_logged_run(flux.client, b, reference=a)
        tags = flux.run("b").data.tags
        assert tags["review.stack_differs"] == f"torch 2.11.0→{ours}"
        assert "torch=2.11.0" in tags["review.stack.reference"]
        assert "software stack differs from the reference: torch 2.11.0→" in tags["review.note"]
        assert outcome.verdict == "pass"  # the outputs still agree; the stack difference is said, not judged
    finally:
        flux.client.set_tag(a, "version.torch", ours)
