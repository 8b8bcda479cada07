"""Correctness review: a run's outputs against a reference's (PSNR, SSIM, pixel differences), judged
against lossless or declared-lossy bounds, recorded as the `correctness` tag (pass | fail | unchecked).

Public API:
  review_run(cfg, result, recorder, run_dir)   the review step inside `diffexp.run.execute`
  review_logged_run(client, run_id, reference) the same after the fact (`python -m diffexp.review`)
  reference_for_sweep(client, parent, run)     which sweep point a run is compared with
  verdict_of(run), verdict_label(run)          the verdict of a logged run, for compare and report
"""

from diffexp.review.check import ReviewOutcome, review_logged_run, review_run
from diffexp.review.reference import reference_for_sweep, resolve_reference, sampling_mismatches
from diffexp.review.verdict import FAIL, PASS, UNCHECKED, VERDICTS, is_sweep_reference, verdict_label, verdict_of

__all__ = [
    "FAIL",
    "PASS",
    "UNCHECKED",
    "VERDICTS",
    "ReviewOutcome",
    "is_sweep_reference",
    "reference_for_sweep",
    "resolve_reference",
    "review_logged_run",
    "review_run",
    "sampling_mismatches",
    "verdict_label",
    "verdict_of",
]
