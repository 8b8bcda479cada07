"""The verdict: which bounds apply to a run (lossless or declared-lossy), judging figures against them,
and reading the `correctness` tag back for compare and report. Pure functions, no heavy imports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from diffexp import names
from diffexp.config.schema import ReviewConfig

PASS, FAIL, UNCHECKED = "pass", "fail", "unchecked"
VERDICTS = (PASS, FAIL, UNCHECKED)
# Set on the run that is a sweep's reference: nothing to compare it with, and the others are compared with it.
ROLE_TAG, ROLE_REFERENCE = "review.role", "reference"
# fp8/fp4 precisions change the output by design.
LOSSY_PRECISIONS = ("fp8", "fp4", "nvfp4", "int8", "int4")


def _flag(value: Optional[str]) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def _none(value: Optional[str]) -> Optional[str]:
    return None if value in (None, "", "None", "null") else value


def settings_from_params(params: Mapping[str, str]) -> ReviewConfig:
    """The run's review settings from its logged params (the flattened config), defaults where absent."""
    d = ReviewConfig()
    return ReviewConfig(
        reference=_none(params.get("review.reference")),
        min_psnr_db=float(params.get("review.min_psnr_db", d.min_psnr_db)),
        min_ssim=float(params.get("review.min_ssim", d.min_ssim)),
        lossy_min_psnr_db=float(params.get("review.lossy_min_psnr_db", d.lossy_min_psnr_db)),
        lossy_min_ssim=float(params.get("review.lossy_min_ssim", d.lossy_min_ssim)),
        judge_lossy=_flag(params.get("review.judge_lossy", str(d.judge_lossy))),
        lossy=_flag(params.get("review.lossy", str(d.lossy))),
        baseline=_flag(params.get("review.baseline", str(d.baseline))),
    )


def _lossy(attention_lossy: bool, backend, review_lossy: bool, precisions: dict[str, Optional[str]]) -> list[str]:
    reasons = []
    if attention_lossy:
        reasons.append(f"attention.backend={backend}")
    if review_lossy:
        reasons.append("review.lossy=true")
    for key, value in precisions.items():
        value = (value or "").lower()
        if any(p in value for p in LOSSY_PRECISIONS):
            reasons.append(f"{key}={value}")
    return reasons


def lossy_reasons(params: Mapping[str, str]) -> list[str]:
    """Why a logged run's change is declared lossy (from its params); empty for a lossless one."""
    precisions = {key: _none(params.get(key)) for key in ("engine.dit_precision", "engine.vae_precision")}
    return _lossy(
        _flag(params.get("attention.lossy")),
        params.get("attention.backend"),
        _flag(params.get("review.lossy")),
        precisions,
    )


def lossy_reasons_of(cfg) -> list[str]:
    """The same, from a run's own typed config (the live review has it: no params read back as strings)."""
    precisions = {"engine.dit_precision": cfg.engine.dit_precision, "engine.vae_precision": cfg.engine.vae_precision}
    return _lossy(cfg.attention.lossy, cfg.attention.backend, cfg.review.lossy, precisions)


@dataclass
class Judgement:
    verdict: str
    # e.g. "lossless: PSNR >= 40 dB, SSIM >= 0.98"
    bounds: str
    failed: list[str] = field(default_factory=list)
    note: Optional[str] = None


def judge(worst_psnr_db: float, worst_ssim: float, settings: ReviewConfig, lossy: list[str]) -> Judgement:
    """Pass when the worst frame (an image is one frame) reaches both bounds.

    Declared-lossy runs get the looser bounds, or only have their figures reported when
    `review.judge_lossy=false` (verdict unchecked: nothing vouches for their output).
    """
    if lossy:
        min_psnr, min_ssim = settings.lossy_min_psnr_db, settings.lossy_min_ssim
        kind = f"lossy ({', '.join(lossy)})"
    else:
        min_psnr, min_ssim, kind = settings.min_psnr_db, settings.min_ssim, "lossless"
    bounds = f"{kind}: PSNR >= {min_psnr:g} dB, SSIM >= {min_ssim:g}"
    if lossy and not settings.judge_lossy:
        return Judgement(UNCHECKED, bounds, note="lossy run: figures reported only (review.judge_lossy=false)")
    failed = []
    if worst_psnr_db < min_psnr:
        failed.append(f"worst-frame PSNR {worst_psnr_db:.2f} dB < {min_psnr:g} dB")
    if worst_ssim < min_ssim:
        failed.append(f"worst-frame SSIM {worst_ssim:.4f} < {min_ssim:g}")
    return Judgement(FAIL if failed else PASS, bounds, failed)


def _tags_of(run: Any) -> Mapping[str, str]:
    if isinstance(run, Mapping):
        return run
    data = getattr(run, "data", None)  # an mlflow Run
    return getattr(data, "tags", None) or getattr(run, "tags", {}) or {}


def verdict_of(run: Any) -> str:
    """`pass`, `fail` or `unchecked` for an MLflow Run, a LoggedRun or a tag mapping; no tag reads unchecked."""
    value = _tags_of(run).get(names.CORRECTNESS, UNCHECKED)
    return value if value in VERDICTS else UNCHECKED


def is_sweep_reference(run: Any) -> bool:
    return _tags_of(run).get(ROLE_TAG) == ROLE_REFERENCE


def verdict_reason(run: Any) -> str:
    """Why the verdict is not a pass (`worst-frame PSNR 23.10 dB < 40 dB`, `no reference`); empty for a pass."""
    tags = _tags_of(run)
    verdict = verdict_of(tags)
    if verdict == PASS:
        return ""
    if verdict == FAIL:
        return tags.get("review.failed", "below the bounds")
    if is_sweep_reference(tags):
        return "the sweep's reference"
    return (tags.get("review.error") or tags.get("review.note") or "no reference").splitlines()[0]


def verdict_label(run: Any) -> str:
    """The verdict with its reason, for a report cell: `fail (worst-frame PSNR 23.10 dB < 40 dB)`."""
    verdict, reason = verdict_of(run), verdict_reason(run)
    return f"{verdict} ({reason})" if reason else verdict


# The software stack a run carries as environment tags (diffexp/environment.py), by the name a message uses.
STACK_TAGS = {
    "torch": "version.torch",
    "diffusers": "version.diffusers",
    "sglang": "version.sglang",
    "cuda": "cuda",
    "gpu": "gpu.names",
}


def stack_of(tags: dict[str, str]) -> str:
    """`torch=2.14.1, diffusers=0.42.1, …` as far as the run's tags say."""
    return ", ".join(f"{name}={tags[tag]}" for name, tag in STACK_TAGS.items() if tag in tags)


def stack_differences(run_tags: dict[str, str], reference_tags: dict[str, str]) -> list[str]:
    """`torch 2.11→2.14.1` for each stack component both record and that differs (reference → run)."""
    return [
        f"{name} {reference_tags[tag]}→{run_tags[tag]}"
        for name, tag in STACK_TAGS.items()
        if tag in run_tags and tag in reference_tags and run_tags[tag] != reference_tags[tag]
    ]
