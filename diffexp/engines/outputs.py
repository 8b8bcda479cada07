"""Write generated images and videos under the run directory, and say what shape they really have."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from diffexp import names

log = logging.getLogger(__name__)


def _to_uint8(frames) -> np.ndarray:
    array = np.asarray(frames)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    return array


def save_images(images, out_dir: Path) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = out_dir / f"image_{i:03d}.png"
        image.save(path)
        paths.append(str(path))
    return paths


def save_videos(videos, out_dir: Path, fps: int) -> list[str]:
    """Each video as lossless frames (.npz, what the correctness review reads) and an MP4 to watch.

    Without an ffmpeg binary the MP4 is skipped and per-frame PNGs are written instead.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, video in enumerate(videos):
        frames = _to_uint8(video)
        npz = out_dir / f"video_{i:03d}.frames.npz"
        np.savez_compressed(npz, frames=frames)
        paths.append(str(npz))
        mp4 = out_dir / f"video_{i:03d}.mp4"
        try:
            import imageio.v2 as imageio

            with imageio.get_writer(mp4, fps=fps, codec="libx264", macro_block_size=1) as writer:
                for frame in frames:
                    writer.append_data(frame)
            paths.append(str(mp4))
        except Exception as exc:  # no ffmpeg: fall back to frames a person can still look at
            # Without imageio-ffmpeg, imageio hands .mp4 to another plugin, which can leave a stub file behind
            # (8 bytes from tifffile on an H200 box): no half-written video is kept as an output.
            mp4.unlink(missing_ok=True)
            log.warning("no MP4 encoder (%s: is imageio-ffmpeg installed?); writing per-frame PNGs", exc)
            from PIL import Image

            frame_dir = out_dir / f"video_{i:03d}_frames"
            frame_dir.mkdir(exist_ok=True)
            for j, frame in enumerate(frames):
                Image.fromarray(frame).save(frame_dir / f"frame_{j:04d}.png")
            paths.append(str(frame_dir))
    return paths


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".gif")


def _shape_of(path: Path) -> tuple[int, int, int] | None:
    """(width, height, frames) of one saved output; None for what is not an image or video (a mesh, audio)."""
    name = path.name.lower()
    if path.is_dir():  # the per-frame PNG fallback of save_videos
        frames = sorted(path.glob("*.png"))
        shape = _shape_of(frames[0]) if frames else None
        return (shape[0], shape[1], len(frames)) if shape else None
    if name.endswith(".frames.npz"):
        with np.load(path) as data:
            count, height, width = data["frames"].shape[:3]
        return int(width), int(height), int(count)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        from PIL import Image

        with Image.open(path) as image:
            return image.width, image.height, 1
    if path.suffix.lower() in VIDEO_SUFFIXES:
        try:
            import imageio.v2 as imageio

            with imageio.get_reader(path) as reader:
                width, height = reader.get_meta_data()["size"]
                return int(width), int(height), reader.count_frames()
        except Exception as exc:  # no decoder here: the shape stays unknown rather than guessed
            log.warning("could not read the shape of %s: %s", path, exc)
    return None


def _text(shape: tuple[int, int, int], video: bool) -> str:
    return "x".join(str(v) for v in (shape if video else shape[:2]))


def output_shape_tags(
    saved: list[str], width: int | None, height: int | None, num_frames: int | None = None
) -> dict[str, str]:
    """`output.shape` (WxH, or WxHxF for videos) of the saved outputs and, when it is not what was requested
    (a pipeline rounds sizes off its grid with only a warning), `output.shape_mismatch`, logged loudly.
    Fields requested as None (the engine's default) are not compared."""
    shapes: dict[tuple[int, int, int], str] = {}
    for item in saved:
        path = Path(item)
        if path.suffix.lower() in VIDEO_SUFFIXES and any(Path(s).name.endswith(".frames.npz") for s in saved):
            continue  # the lossless frames beside it say the same, without a decoder
        shape = _shape_of(path)
        if shape is not None:
            shapes.setdefault(shape, path.name)
    if not shapes:
        return {}
    video = num_frames is not None or any(s[2] > 1 for s in shapes)
    tags = {names.OUTPUT_SHAPE: ", ".join(_text(s, video) for s in shapes)}
    requested = (width, height, num_frames if video else 1)
    wrong = [
        f"{name}: {_text(shape, video)}"
        for shape, name in shapes.items()
        if any(want is not None and want != got for want, got in zip(requested, shape))
    ]
    if wrong:
        asked = _text(tuple("?" if v is None else v for v in requested), video)  # type: ignore[arg-type]
        tags[names.OUTPUT_SHAPE_MISMATCH] = f"requested {asked}, got " + "; ".join(wrong)
        log.warning("OUTPUT SHAPE MISMATCH: %s", tags[names.OUTPUT_SHAPE_MISMATCH])
    return tags
