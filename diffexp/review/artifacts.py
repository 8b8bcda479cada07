"""Pictures of a comparison: a heat-map of the absolute difference and a reference | run | difference
side-by-side, one pair of PNGs per output (for a video: a few frames, the worst one included)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw

from diffexp.review.metrics import OutputComparison, capped

# Small tiles are enlarged (nearest neighbour, so pixels stay visible) to at least this many pixels.
MIN_TILE_PX = 192
MAX_TILE_PX = 512
MAX_VIDEO_FRAMES_SHOWN = 6
# Video rows are an overview (the heat-map keeps full resolution): frames larger than this are shrunk.
MAX_VIDEO_TILE_PX = 640
LABEL_PX = 14
GUTTER_PX = 4
# An "inferno"-like ramp: black (no difference) through purple and orange to pale yellow (the largest).
_RAMP = np.array([(0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164)], dtype=np.float64)


def _colormap(values: np.ndarray) -> np.ndarray:
    """values in [0, 1] → uint8 RGB."""
    x = np.clip(values, 0.0, 1.0) * (len(_RAMP) - 1)
    stops = np.arange(len(_RAMP))
    rgb = np.stack([np.interp(x, stops, _RAMP[:, c]) for c in range(3)], axis=-1)
    return rgb.round().astype(np.uint8)


def _heat(run: np.ndarray, reference: np.ndarray, scale: float) -> np.ndarray:
    """Per-pixel largest channel difference, coloured on [0, scale]."""
    diff = np.abs(run.astype(np.int16) - reference.astype(np.int16)).max(axis=-1)
    return _colormap(diff / scale if scale > 0 else np.zeros(diff.shape))


def _enlarge(frame: np.ndarray, max_side: Optional[int] = None) -> Image.Image:
    """Small frames enlarged to stay visible; with `max_side`, large ones shrunk to keep the PNG small."""
    h, w = frame.shape[:2]
    image = Image.fromarray(frame)
    if max_side is not None and max(h, w) > max_side:
        scale = max_side / max(h, w)
        return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BOX)
    factor = max(1, min(-(-MIN_TILE_PX // min(h, w)), MAX_TILE_PX // max(h, w) or 1))
    return image.resize((w * factor, h * factor), Image.NEAREST) if factor > 1 else image


def _labelled(image: Image.Image, text: str) -> Image.Image:
    """The tile under a caption, with a white gutter so neighbouring tiles stay apart."""
    out = Image.new("RGB", (image.width + GUTTER_PX, image.height + LABEL_PX + 4 + GUTTER_PX), "white")
    out.paste(image, (0, LABEL_PX + 4))
    ImageDraw.Draw(out).text((2, 2), text, fill="black")
    return out


def _grid(rows: list[list[Image.Image]]) -> Image.Image:
    width = sum(tile.width for tile in rows[0])
    height = sum(row[0].height for row in rows)
    out = Image.new("RGB", (width, height), "white")
    y = 0
    for row in rows:
        x = 0
        for tile in row:
            out.paste(tile, (x, y))
            x += tile.width
        y += row[0].height
    return out


def _shown_frames(comparison: OutputComparison) -> list[int]:
    count = len(comparison.frames)
    if count <= MAX_VIDEO_FRAMES_SHOWN:
        return list(range(count))
    picks = set(np.linspace(0, count - 1, MAX_VIDEO_FRAMES_SHOWN - 1).round().astype(int).tolist())
    picks.add(comparison.worst_frame)
    return sorted(picks)


def _colour_bar(height: int, scale: float) -> Image.Image:
    bar = _colormap(np.linspace(1.0, 0.0, height)[:, None].repeat(16, axis=1))
    out = Image.new("RGB", (16 + 44, height), "white")
    out.paste(Image.fromarray(bar), (0, 0))
    draw = ImageDraw.Draw(out)
    draw.text((19, 0), f"{scale:g}", fill="black")
    draw.text((19, height - 12), "0", fill="black")
    return out


def write_heatmap(comparison: OutputComparison, path: Path) -> Path:
    """|run - reference| of the worst frame, coloured from 0 to the largest difference, with its scale."""
    i = comparison.worst_frame
    scale = comparison.frames[i].max_abs_diff
    tile = _enlarge(_heat(comparison.run_frames[i], comparison.reference_frames[i], scale))
    where = f" frame {i}" if comparison.kind == "video" else ""
    title = f"|run - reference|{where}, max {scale:g}" if scale else f"identical{where}"
    image = _grid([[_labelled(tile, title), _labelled(_colour_bar(tile.height, scale), "")]])
    image.save(path)
    return path


def write_side_by_side(comparison: OutputComparison, path: Path) -> Path:
    """Rows of reference | run | difference, one row per shown frame, each labelled with its PSNR."""
    scale = max(f.max_abs_diff for f in comparison.frames)
    fit = MAX_VIDEO_TILE_PX if comparison.kind == "video" else None
    rows = []
    for i in _shown_frames(comparison):
        figures = comparison.frames[i]
        where = f"frame {i}: " if comparison.kind == "video" else ""
        rows.append(
            [
                _labelled(_enlarge(comparison.reference_frames[i], fit), f"{where}reference"),
                _labelled(_enlarge(comparison.run_frames[i], fit), f"run, PSNR {capped(figures.psnr_db):.1f} dB"),
                _labelled(
                    _enlarge(_heat(comparison.run_frames[i], comparison.reference_frames[i], scale), fit),
                    f"|diff| (0-{scale:g})",
                ),
            ]
        )
    image = _grid(rows)
    image.save(path)
    return path


def write_pictures(comparisons: list[OutputComparison], out_dir: Path) -> Path:
    """`<output>.diff_heatmap.png` and `<output>.side_by_side.png` for each output, in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for comparison in comparisons:
        write_heatmap(comparison, out_dir / f"{comparison.name}.diff_heatmap.png")
        write_side_by_side(comparison, out_dir / f"{comparison.name}.side_by_side.png")
    return out_dir
