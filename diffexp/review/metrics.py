"""PSNR, SSIM and absolute pixel differences between a run's frames and the reference's (scikit-image).

Pixel figures are on the 0-255 scale. Identical frames have infinite PSNR; MLflow would store
that as 1.8e308, so logged PSNRs are capped at PSNR_CAP_DB (100 dB: far above any lossy change).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from diffexp.errors import DiffexpError

PSNR_CAP_DB = 100.0
DATA_RANGE = 255
# scikit-image's default SSIM window; smaller frames use the largest odd window that fits.
SSIM_WINDOW = 7


@dataclass
class FrameFigures:
    psnr_db: float  # may be inf (identical frame); cap before logging
    ssim: float
    mean_abs_diff: float
    max_abs_diff: float
    mse: float = 0.0  # mean squared error on the 0-255 scale: pooled over frames for review.psnr_db
    values: int = 0  # pixel values compared (H·W·C)


@dataclass
class OutputComparison:
    """One output (image or video) against its reference counterpart."""

    name: str
    kind: str  # image | video
    frames: list[FrameFigures]
    run_frames: np.ndarray = field(repr=False)
    reference_frames: np.ndarray = field(repr=False)

    @property
    def worst_frame(self) -> int:
        return min(range(len(self.frames)), key=lambda i: (self.frames[i].psnr_db, self.frames[i].ssim))


def capped(psnr_db: float) -> float:
    return min(psnr_db, PSNR_CAP_DB)


def psnr_of_mse(mse: float) -> float:
    """PSNR in dB for a mean squared error on the 0-255 scale (scikit-image's formula); 0 → inf."""
    return math.inf if mse == 0 else 10 * math.log10(DATA_RANGE**2 / mse)


def _ssim(run: np.ndarray, reference: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    side = min(run.shape[0], run.shape[1])
    window = min(SSIM_WINDOW, side if side % 2 else side - 1)
    if window < 3:
        raise DiffexpError(f"frames of {run.shape[1]}x{run.shape[0]} pixels are too small for SSIM (need at least 3x3)")
    return float(structural_similarity(reference, run, channel_axis=-1, data_range=DATA_RANGE, win_size=window))


def compare_frames(name: str, kind: str, run: np.ndarray, reference: np.ndarray) -> OutputComparison:
    """Per-frame figures for two uint8 frame stacks [F, H, W, 3] of the same shape."""
    if run.shape != reference.shape:
        raise DiffexpError(
            f"output {name}: shape mismatch, run is {_shape(run)} and the reference is {_shape(reference)}; "
            "was the reference generated at another resolution or frame count?"
        )
    from tqdm.auto import tqdm

    frames = []
    # SSIM takes about a second per 720p frame on one CPU core: long videos get a progress bar.
    for r, ref in tqdm(zip(run, reference), total=len(run), desc=f"review {name}", disable=len(run) < 16, leave=False):
        if np.array_equal(r, ref):  # the common lossless case, exact by definition and much faster
            frames.append(FrameFigures(math.inf, 1.0, 0.0, 0.0, 0.0, r.size))
            continue
        diff = np.abs(r.astype(np.int16) - ref.astype(np.int16))
        mse = float(np.mean(np.square(diff, dtype=np.float64)))
        frames.append(FrameFigures(psnr_of_mse(mse), _ssim(r, ref), float(diff.mean()), float(diff.max()), mse, r.size))
    return OutputComparison(name, kind, frames, run, reference)


def _shape(frames: np.ndarray) -> str:
    f, h, w, c = frames.shape
    return f"{f} frame(s) of {w}x{h}x{c}"


def summarize(comparisons: list[OutputComparison]) -> dict[str, float]:
    """The run's figures under their MLflow names. Images count as one frame each.

    review.psnr_db is over every pixel of every output; the worst_/mean_frame_ figures are
    added when any output is a video (for images alone they equal psnr_db and ssim).
    """
    frames = [f for c in comparisons for f in c.frames]
    values = sum(f.values for f in frames)
    out = {
        "review.psnr_db": capped(psnr_of_mse(sum(f.mse * f.values for f in frames) / values)),
        "review.ssim": float(np.mean([f.ssim for f in frames])),
        "review.mean_abs_diff": sum(f.mean_abs_diff * f.values for f in frames) / values,
        "review.max_abs_diff": max(f.max_abs_diff for f in frames),
        "review.worst_frame_psnr_db": capped(min(f.psnr_db for f in frames)),
        "review.worst_frame_ssim": min(f.ssim for f in frames),
    }
    if any(c.kind == "video" for c in comparisons):
        out["review.mean_frame_psnr_db"] = float(np.mean([capped(f.psnr_db) for f in frames]))
        out["review.mean_frame_ssim"] = out["review.ssim"]
        out["review.frames_compared"] = float(len(frames))
    else:
        del out["review.worst_frame_psnr_db"], out["review.worst_frame_ssim"]
    return out


def worst(comparisons: list[OutputComparison]) -> tuple[float, float]:
    """(worst-frame PSNR, worst-frame SSIM) over all outputs: what the verdict is judged on."""
    frames = [f for c in comparisons for f in c.frames]
    return min(f.psnr_db for f in frames), min(f.ssim for f in frames)


def frame_series(comparisons: list[OutputComparison]) -> dict[str, list[float]]:
    """Per-frame step series for videos (step = frame index, counting on across several videos)."""
    frames = [f for c in comparisons if c.kind == "video" for f in c.frames]
    if not frames:
        return {}
    return {
        "review.frame_psnr_db": [capped(f.psnr_db) for f in frames],
        "review.frame_ssim": [f.ssim for f in frames],
        "review.frame_mean_abs_diff": [f.mean_abs_diff for f in frames],
        "review.frame_max_abs_diff": [f.max_abs_diff for f in frames],
    }
