"""Correctness review: a run's outputs against a reference's (PSNR, SSIM, pixel differences), judged
against lossless or declared-lossy bounds, recorded as the `correctness` tag (pass | fail | unchecked).

Public API:
  review_run(cfg, result, recorder, run_dir)   the review step inside `diffexp.run.execute`
  review_logged_run(client, run_id, reference) the same after the fact (`python -m diffexp.review`)
  reference_for_sweep(client, parent, run)     which sweep point a run is compared with
  verdict_of(run), verdict_label(run)          the verdict of a logged run, for compare and report

The names load on first use (diffexp.lazy): the tuner's gate reads `diffexp.review.media` / `.metrics`
on a GPU box without MLflow.
"""

from diffexp.lazy import exports

__getattr__, __all__ = exports(
    __name__,
    {
        **dict.fromkeys(["ReviewOutcome", "review_logged_run", "review_run"], "check"),
        **dict.fromkeys(["reference_for_sweep", "resolve_reference"], "reference"),
        "sampling_mismatches": "sampling",
        **dict.fromkeys(
            ["FAIL", "PASS", "UNCHECKED", "VERDICTS", "is_sweep_reference", "verdict_label", "verdict_of"], "verdict"
        ),
    },
)
