"""Write generated images and videos under the run directory."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

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
            log.warning("no MP4 encoder (%s); writing per-frame PNGs", exc)
            from PIL import Image

            frame_dir = out_dir / f"video_{i:03d}_frames"
            frame_dir.mkdir(exist_ok=True)
            for j, frame in enumerate(frames):
                Image.fromarray(frame).save(frame_dir / f"frame_{j:04d}.png")
            paths.append(str(frame_dir))
    return paths
