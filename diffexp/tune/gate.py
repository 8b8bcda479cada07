"""Whether a trial may win: it ran, its measured peaks fit the budgets, and its output passed the review.
Constraints are measured (the allocator's peak under the VRAM cap, the process tree's peak RSS), never estimated."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from diffexp import names, rundir
from diffexp.errors import DiffexpError
from diffexp.results import RunResult

FEASIBLE, INFEASIBLE, PRUNED, PROMOTED = names.TUNE_FEASIBLE, "infeasible", "pruned", "promoted"
PASS = "pass"


@dataclass(frozen=True)
class Budget:
    vram_gib: Optional[float] = None  # applies when the run's peaks are CUDA devices'
    host_gib: Optional[float] = None


def host_peak_gib(result: Optional[RunResult], sampled_gib: Optional[float]) -> Optional[float]:
    """The trial's host memory: the run's own peak RSS on CPU (`peak_mem_gib.cpu`), or the sampled process tree's,
    whichever is higher."""
    figures = [v for v in ((result.peak_mem_gib_per_device.get("cpu") if result else None), sampled_gib) if v]
    return max(figures) if figures else None


def device_peak_gib(result: RunResult) -> Optional[float]:
    peaks = [v for k, v in result.peak_mem_gib_per_device.items() if k != "cpu"]
    return max(peaks) if peaks else None


def over_budget(result: RunResult, host_gib: Optional[float], budget: Budget) -> Optional[str]:
    """Why the measured peaks do not fit the budget, or None."""
    vram = device_peak_gib(result)
    if budget.vram_gib is not None and vram is not None and vram > budget.vram_gib:
        return f"peak VRAM {vram:.2f} GiB > budget {budget.vram_gib:g} GiB"
    if budget.host_gib is not None and host_gib is not None and host_gib > budget.host_gib:
        return f"peak host RSS {host_gib:.2f} GiB > budget {budget.host_gib:g} GiB"
    return None


def review_files(run_dir: Path, reference_dir: Path) -> tuple[str, str]:
    """(verdict, why) of an untracked trial's outputs against the reference trial's folder, with the review's own
    pieces and bounds (diffexp.review): the same judgement a tracked trial gets from `review.reference=<run id>`."""
    from omegaconf import OmegaConf

    from diffexp.review import media, metrics
    from diffexp.review.sampling import sampling_mismatches
    from diffexp.review.verdict import judge, lossy_reasons, settings_from_params
    from diffexp.tracking.params import flatten

    params = flatten(OmegaConf.to_container(OmegaConf.load(run_dir / rundir.CONFIG_YAML), resolve=True))
    ref_params = flatten(OmegaConf.to_container(OmegaConf.load(reference_dir / rundir.CONFIG_YAML), resolve=True))
    mismatch = sampling_mismatches(params, ref_params)
    if mismatch:
        return "unchecked", "not comparable with the reference: " + ", ".join(mismatch)
    try:
        comparisons = [
            metrics.compare_frames(mine.name, mine.kind, media.read_frames(mine), media.read_frames(ref))
            for mine, ref in media.pair(
                media.outputs_at(run_dir / rundir.OUTPUTS), media.outputs_at(reference_dir / rundir.OUTPUTS)
            )
        ]
    except DiffexpError as exc:
        return "unchecked", str(exc)
    if not comparisons:
        return "unchecked", "no outputs to compare"
    psnr, ssim = metrics.worst(comparisons)
    j = judge(psnr, ssim, settings_from_params(params), lossy_reasons(params))
    return j.verdict, "; ".join(j.failed) or j.bounds
