"""Bounds, verdicts, sampling-parameter matching and figures, on composed configs and real arrays (no runs)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from diffexp.config import compose, to_config
from diffexp.errors import DiffexpError
from diffexp.review import sampling_mismatches, verdict_label, verdict_of
from diffexp.review.metrics import PSNR_CAP_DB, compare_frames, summarize, worst
from diffexp.review.reference import Reference, check_sampling
from diffexp.review.verdict import judge, lossy_reasons, settings_from_params
from diffexp.tracking.params import flatten


def params(*overrides: str) -> dict[str, str]:
    """A run's logged params: the flattened composed config, as execute logs them."""
    return flatten(dataclasses.asdict(to_config(compose(list(overrides)))))


def test_lossless_run_is_judged_on_the_strict_bounds():
    settings = settings_from_params(params())
    assert judge(41.0, 0.99, settings, []).verdict == "pass"
    failed = judge(39.0, 0.99, settings, [])
    assert failed.verdict == "fail" and failed.failed == ["worst-frame PSNR 39.00 dB < 40 dB"]
    assert judge(float("inf"), 1.0, settings, []).verdict == "pass"


def test_declared_lossy_runs_get_the_looser_bounds_or_are_only_reported():
    sage = params("attention=sage_attn")
    reasons = lossy_reasons(sage)
    assert reasons == ["attention.backend=sage_attn"]
    lossy = judge(30.0, 0.9, settings_from_params(sage), reasons)
    assert lossy.verdict == "pass" and lossy.bounds.startswith("lossy (attention.backend=sage_attn): PSNR >= 25 dB")
    assert judge(20.0, 0.9, settings_from_params(sage), reasons).verdict == "fail"
    assert lossy_reasons(params("review.lossy=true")) == ["review.lossy=true"]
    assert lossy_reasons(params("engine.dit_precision=fp8")) == ["engine.dit_precision=fp8"]
    reported = params("attention=sage_attn", "review.judge_lossy=false")
    only = judge(5.0, 0.1, settings_from_params(reported), lossy_reasons(reported))
    assert only.verdict == "unchecked" and "judge_lossy=false" in only.note


def test_sampling_mismatch_lists_every_differing_field_with_both_values():
    base = params()
    other = params("model.sampling.prompt=a red fox", "model.sampling.num_inference_steps=3")
    assert sampling_mismatches(base, params()) == []
    # The MP4 frame rate does not change the frames.
    assert sampling_mismatches(base, params("model.sampling.fps=8")) == []
    problems = sampling_mismatches(base, other)
    assert problems == [
        f"model.sampling.prompt: run {base['model.sampling.prompt']!r}, reference 'a red fox'",
        "model.sampling.num_inference_steps: run '4', reference '3'",
    ]
    with pytest.raises(DiffexpError, match=r"2 difference\(s\)") as err:
        check_sampling(base, Reference("abc", params=other))
    assert "num_inference_steps: run '4', reference '3'" in str(err.value)


def test_verdict_of_reads_the_tag_and_treats_missing_as_unchecked():
    assert verdict_of({"correctness": "pass"}) == "pass"
    assert verdict_of({"correctness": "fail"}) == "fail"
    assert verdict_of({}) == "unchecked"
    assert verdict_of({"correctness": "bogus"}) == "unchecked"
    assert verdict_label({"correctness": "unchecked", "review.error": "reference x not found\nmore"}) == (
        "unchecked (reference x not found)"
    )


def test_figures_on_real_arrays():
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 256, (3, 16, 24, 3), dtype=np.uint8)
    same = compare_frames("video_000", "video", reference.copy(), reference)
    figures = summarize([same])
    assert figures["review.psnr_db"] == PSNR_CAP_DB and figures["review.ssim"] == 1.0
    assert figures["review.max_abs_diff"] == 0 and figures["review.frames_compared"] == 3

    run = reference.copy()
    run[1] = np.clip(run[1].astype(int) + 10, 0, 255).astype(np.uint8)
    changed = compare_frames("video_000", "video", run, reference)
    assert changed.worst_frame == 1
    assert [f.psnr_db for f in changed.frames][0::2] == [np.inf, np.inf]
    psnr, ssim = worst([changed])
    assert 20 < psnr < 40 and ssim < 1.0
    assert summarize([changed])["review.max_abs_diff"] == 10

    with pytest.raises(DiffexpError, match="shape mismatch"):
        compare_frames("image_000", "image", reference[:1], reference[:1, :8])
