"""Generated outputs as frames: find the outputs in a folder or file list, pair a run's with a reference's,
and read each as uint8 RGB frames [F, H, W, 3] (an image is one frame)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffexp import rundir
from diffexp.errors import DiffexpError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".gif")
# Per-frame PNG folders written when no MP4 encoder is available (engines/outputs.py).
FRAME_DIR_SUFFIX = "_frames"


@dataclass(frozen=True)
class OutputFile:
    """One generated output on disk and how it pairs with the other side's."""

    name: str  # pairing key: image_000, video_000
    path: Path
    kind: str  # image | video
    # Lower is better: lossless frames (.frames.npz) and images before frame folders before encoded video.
    rank: int


def _describe(path: Path) -> OutputFile | None:
    name = path.name
    if path.is_dir():
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
            stem = name[: -len(FRAME_DIR_SUFFIX)] if name.endswith(FRAME_DIR_SUFFIX) else name
            return OutputFile(stem, path, "video", 1)
        return None
    lower = name.lower()
    if lower.endswith(".npz"):
        stem = name[: -len(".frames.npz")] if lower.endswith(".frames.npz") else path.stem
        return OutputFile(stem, path, "video", 0)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return OutputFile(path.stem, path, "image", 0)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return OutputFile(path.stem, path, "video", 2)
    return None


def find_outputs(paths: list[Path]) -> dict[str, OutputFile]:
    """The best readable form of each output among `paths` (files or frame folders), by name."""
    best: dict[str, OutputFile] = {}
    for path in paths:
        found = _describe(Path(path))
        if found is not None and (found.name not in best or found.rank < best[found.name].rank):
            best[found.name] = found
    for output in best.values():
        if output.rank == 2:
            log.warning("%s: only an encoded video to compare; compression limits the PSNR reached", output.path)
    return best


def outputs_at(path: Path) -> dict[str, OutputFile]:
    """Outputs given as a reference path: one file, a folder of outputs, or a diffexp run folder (its outputs/)."""
    if not path.exists():
        raise DiffexpError(f"reference path {str(path)!r}: no such file or folder")
    if path.is_file() or path.name.endswith(FRAME_DIR_SUFFIX):
        found = find_outputs([path])
    elif (path / rundir.OUTPUTS).is_dir():
        found = find_outputs(sorted((path / rundir.OUTPUTS).iterdir()))
    else:
        found = find_outputs(sorted(path.iterdir()))
    if not found:
        raise DiffexpError(
            f"reference path {str(path)!r}: no images ({', '.join(IMAGE_SUFFIXES)}) or videos "
            f"(.frames.npz, {', '.join(VIDEO_SUFFIXES)}) found"
        )
    return found


def pair(run: dict[str, OutputFile], reference: dict[str, OutputFile]) -> list[tuple[OutputFile, OutputFile]]:
    """Match outputs by name (image_000 with image_000); a single output on each side pairs regardless of name."""
    if not run:
        raise DiffexpError("the run produced no images or videos to review")
    if len(run) == 1 and len(reference) == 1:
        return [(next(iter(run.values())), next(iter(reference.values())))]
    if set(run) != set(reference):
        raise DiffexpError(
            f"the run's outputs ({', '.join(sorted(run))}) do not match "
            f"the reference's ({', '.join(sorted(reference))})"
        )
    return [(run[name], reference[name]) for name in sorted(run)]


def read_frames(output: OutputFile) -> np.ndarray:
    """uint8 RGB frames [F, H, W, 3]; an unreadable file is a DiffexpError naming it."""
    path = output.path
    try:
        if path.is_dir():
            from PIL import Image

            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            frames = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files])
        elif path.suffix.lower() == ".npz":
            with np.load(path) as data:
                key = "frames" if "frames" in data.files else data.files[0]
                frames = data[key]
        elif output.kind == "image":
            from PIL import Image

            frames = np.asarray(Image.open(path).convert("RGB"))[None]
        else:
            import imageio.v2 as imageio

            frames = np.stack([np.asarray(f)[..., :3] for f in imageio.mimread(path, memtest=False)])
    except Exception as exc:  # corrupt, truncated or foreign files all mean the same to the user
        raise DiffexpError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    return _as_rgb_frames(frames, path)


def _as_rgb_frames(frames: np.ndarray, path: Path) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:  # one frame [H, W, C], or grey frames [F, H, W]
        frames = frames[None] if frames.shape[-1] in (3, 4) else frames[..., None]
    if frames.ndim != 4:
        raise DiffexpError(f"cannot read {path}: expected frames [F, H, W, 3], got shape {list(frames.shape)}")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    frames = frames[..., :3]
    if frames.dtype != np.uint8:
        if np.issubdtype(frames.dtype, np.floating):
            frames = (np.clip(frames, 0.0, 1.0) * 255).round()
        frames = frames.astype(np.uint8)
    return frames
