"""Review one run: resolve its reference, compare outputs, judge, and record the verdict on the run.

A review that cannot be done (reference missing or not comparable, unreadable artifact, shape
mismatch) records `correctness=unchecked` and `review.error` and leaves the run's status and
measurements as they are: a run is FINISHED or FAILED for what it measured, not for its review.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from diffexp import names
from diffexp.config.schema import ReviewConfig
from diffexp.errors import DiffexpError
from diffexp.review import artifacts, media, metrics
from diffexp.review.reference import NoReference, check_sampling, resolve_reference
from diffexp.review.verdict import (
    FAIL,
    PASS,
    ROLE_REFERENCE,
    ROLE_TAG,
    UNCHECKED,
    judge,
    lossy_reasons,
    lossy_reasons_of,
    settings_from_params,
    stack_differences,
    stack_of,
)
from diffexp.tracking.queries import LoggedRun, download_outputs, get_run
from diffexp.tracking.writer import RunWriter

log = logging.getLogger(__name__)

# Every tag a review may set besides `correctness`; a new review replaces all of them.
REVIEW_TAGS = (
    "review.reference",
    "review.reference_run_id",
    "review.bounds",
    "review.failed",
    "review.note",
    "review.error",
    ROLE_TAG,
    "review.params_checked",
    "review.lossy",
    "review.baseline",
    "review.stack.run",
    "review.stack.reference",
    "review.stack_differs",
)


@dataclass
class ReviewOutcome:
    verdict: str  # pass | fail | unchecked
    reference: Optional[str] = None  # as asked for (run id, latest:<model>, sweep:first, path)
    reference_run_id: Optional[str] = None
    figures: dict[str, float] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)
    bounds: Optional[str] = None
    failed: list[str] = field(default_factory=list)
    note: Optional[str] = None
    error: Optional[str] = None
    is_sweep_reference: bool = False
    params_checked: bool = True
    lossy: list[str] = field(default_factory=list)
    # Both sides' software stacks, and what differs (reference → run).
    stack_run: Optional[str] = None
    stack_reference: Optional[str] = None
    stack_differs: list[str] = field(default_factory=list)

    def described(self) -> dict[str, Optional[str]]:
        """What the review compared and found, as `review.<key>` tags hold it and the console shows it."""
        return {
            "reference": self.reference,
            "reference_run_id": self.reference_run_id,
            "bounds": self.bounds,
            "failed": "; ".join(self.failed) or None,
            "note": self.note,
            "error": self.error[:5000] if self.error else None,
        }

    def tags(self, baseline: bool) -> dict[str, str]:
        tags = {names.CORRECTNESS: self.verdict}
        optional = {
            **{f"review.{key}": value for key, value in self.described().items()},
            ROLE_TAG: ROLE_REFERENCE if self.is_sweep_reference else None,
            "review.params_checked": None if self.params_checked else "false",
            "review.lossy": ", ".join(self.lossy) or None,
            "review.baseline": "true" if baseline else None,
            "review.stack.run": self.stack_run or None,
            "review.stack.reference": self.stack_reference or None,
            "review.stack_differs": ", ".join(self.stack_differs) or None,
        }
        tags.update({k: v for k, v in optional.items() if v is not None})
        return tags


def _compare(
    client,
    run: LoggedRun,
    run_outputs: Optional[list[Path]],
    spec: Optional[str],
    work_dir: Path,
    settings: ReviewConfig,
    lossy: list[str],
) -> ReviewOutcome:
    reference = resolve_reference(client, spec, run)
    if isinstance(reference, NoReference):
        return ReviewOutcome(
            UNCHECKED, reference=spec or None, note=reference.note, is_sweep_reference=reference.is_sweep_reference
        )
    outcome = ReviewOutcome(
        UNCHECKED,
        reference=reference.label,
        reference_run_id=reference.run.run_id if reference.run else None,
        params_checked=reference.params is not None,
        lossy=lossy,
        stack_run=stack_of(run.tags),
    )
    if reference.run is not None:
        outcome.stack_reference = stack_of(reference.run.tags)
        outcome.stack_differs = stack_differences(run.tags, reference.run.tags)
    try:
        check_sampling(run.params, reference)
        with tempfile.TemporaryDirectory(prefix="diffexp-review-") as tmp:
            if run_outputs is None:
                run_outputs = download_outputs(client, run.run_id, Path(tmp) / "run")
            if reference.run is not None:
                theirs = media.find_outputs(download_outputs(client, reference.run.run_id, Path(tmp) / "reference"))
            else:
                theirs = media.outputs_at(reference.path)
            comparisons = [
                metrics.compare_frames(mine.name, mine.kind, media.read_frames(mine), media.read_frames(ref))
                for mine, ref in media.pair(media.find_outputs(run_outputs), theirs)
            ]
    except DiffexpError as exc:
        outcome.error = str(exc)
        return outcome
    worst_psnr, worst_ssim = metrics.worst(comparisons)
    judgement = judge(worst_psnr, worst_ssim, settings, outcome.lossy)
    outcome.verdict, outcome.bounds, outcome.failed, outcome.note = (
        judgement.verdict,
        judgement.bounds,
        judgement.failed,
        judgement.note,
    )
    if outcome.stack_differs:
        # A change of stack moves speed and output on its own: the verdict says so rather than credit the change.
        outcome.note = "; ".join(
            filter(
                None, [outcome.note, "software stack differs from the reference: " + ", ".join(outcome.stack_differs)]
            )
        )
    outcome.figures = metrics.summarize(comparisons)
    outcome.series = metrics.frame_series(comparisons)
    artifacts.write_pictures(comparisons, work_dir)
    return outcome


def review(
    client,
    run: LoggedRun,
    run_outputs: Optional[list[Path]],
    spec: Optional[str],
    work_dir: Path,
    settings: Optional[ReviewConfig] = None,
    lossy: Optional[list[str]] = None,
) -> ReviewOutcome:
    """Review `run` (its outputs given, or downloaded when None) against `spec` and record the result on it.

    `settings` and `lossy` come from the run's typed config when the caller has it (the live review); a run
    reviewed after the fact has only its logged params, read back here."""
    settings = settings if settings is not None else settings_from_params(run.params)
    lossy = lossy if lossy is not None else lossy_reasons(run.params)
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        outcome = _compare(client, run, run_outputs, spec, work_dir, settings, lossy)
    except DiffexpError as exc:  # the reference could not be resolved
        outcome = ReviewOutcome(UNCHECKED, reference=spec or None, error=str(exc))
    _record(RunWriter(client, run.run_id), run, outcome, work_dir, settings.baseline)
    _log(run, outcome)
    return outcome


def _record(writer: RunWriter, run: LoggedRun, outcome: ReviewOutcome, pictures: Path, baseline: bool) -> None:
    tags = outcome.tags(baseline=baseline)
    writer.delete_tags([k for k in REVIEW_TAGS if k in run.tags and k not in tags])
    writer.set_tags(tags)
    if outcome.figures:
        writer.log_metrics(outcome.figures)
    for key, values in outcome.series.items():
        writer.log_series(key, values)
    if any(pictures.glob("*.png")):
        writer.log_artifact(pictures, "review")


def _log(run: LoggedRun, outcome: ReviewOutcome) -> None:
    against = f" against {outcome.reference}" if outcome.reference else ""
    if outcome.stack_differs:
        log.warning(
            "run %s and its reference ran on different software stacks (%s): differences are not the change's alone",
            run.run_id,
            ", ".join(outcome.stack_differs),
        )
    if outcome.error:
        log.error("correctness unchecked for run %s%s: %s", run.run_id, against, outcome.error)
    elif outcome.verdict == UNCHECKED:
        log.info("correctness unchecked for run %s: %s", run.run_id, outcome.note)
    else:
        f = outcome.figures
        level = logging.INFO if outcome.verdict == PASS else logging.WARNING
        log.log(
            level,
            "correctness %s for run %s%s (%s): PSNR %.2f dB, SSIM %.4f, max |diff| %g%s",
            outcome.verdict,
            run.run_id,
            against,
            outcome.bounds,
            f["review.psnr_db"],
            f["review.ssim"],
            f["review.max_abs_diff"],
            f"; {'; '.join(outcome.failed)}" if outcome.verdict == FAIL else "",
        )


def review_run(cfg, result, recorder, run_dir: Path) -> ReviewOutcome:
    """The review step of `diffexp.run.execute`, right after the run's measurements are logged: its bounds and
    lossy declarations from the typed config (the run record is read for what the store knows: id, tags)."""
    run = get_run(recorder.client, recorder.run_id)
    outputs = [Path(p) for p in result.outputs]
    return review(
        recorder.client, run, outputs, cfg.review.reference, Path(run_dir) / "review", cfg.review, lossy_reasons_of(cfg)
    )


def review_logged_run(client, run_id: str, reference: Optional[str] = None) -> ReviewOutcome:
    """After the fact: review a logged run against `reference` (default: its own review.reference)."""
    run = get_run(client, run_id)
    spec = reference if reference is not None else settings_from_params(run.params).reference
    with tempfile.TemporaryDirectory(prefix="diffexp-review-") as tmp:
        return review(client, run, None, spec, Path(tmp) / "review")
