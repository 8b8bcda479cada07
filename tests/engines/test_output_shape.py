"""The saved outputs' real shape is recorded, and a pipeline's silent rounding is tagged as a mismatch."""

from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image

from diffexp import names
from diffexp.config import compose, to_config
from diffexp.engines.outputs import output_shape_tags, save_images, save_videos
from diffexp.models import load_pipeline


def test_tiny_flux_rounds_width_50_to_48_and_the_tag_says_so(tmp_path, caplog):
    model = to_config(compose([])).model
    pipe = load_pipeline(model, torch.device("cpu"))
    # Bypassing validation (which refuses 50): what the pipeline does with it.
    images = pipe(
        prompt="a cat", width=50, height=64, num_inference_steps=1, max_sequence_length=32, output_type="pil"
    ).images
    saved = save_images(images, tmp_path)
    with caplog.at_level(logging.WARNING):
        tags = output_shape_tags(saved, width=50, height=64)
    assert tags[names.OUTPUT_SHAPE] == "48x64"
    assert tags[names.OUTPUT_SHAPE_MISMATCH] == "requested 50x64, got image_000.png: 48x64"
    assert "OUTPUT SHAPE MISMATCH" in caplog.text


def test_matching_video_has_a_shape_and_no_mismatch(tmp_path):
    saved = save_videos([np.zeros((9, 32, 48, 3), dtype=np.uint8)], tmp_path, fps=8)
    tags = output_shape_tags(saved, width=48, height=32, num_frames=9)
    assert tags == {names.OUTPUT_SHAPE: "48x32x9"}


def test_video_with_fewer_frames_than_requested_is_a_mismatch(tmp_path):
    saved = save_videos([np.zeros((9, 32, 32, 3), dtype=np.uint8)], tmp_path, fps=8)
    tags = output_shape_tags(saved, width=32, height=32, num_frames=8)
    assert tags[names.OUTPUT_SHAPE_MISMATCH] == "requested 32x32x8, got video_000.frames.npz: 32x32x9"


def test_engine_default_sizes_are_not_compared(tmp_path):
    saved = save_images([Image.new("RGB", (40, 24))], tmp_path)
    assert output_shape_tags(saved, width=None, height=None) == {names.OUTPUT_SHAPE: "40x24"}


def test_a_failed_mp4_writer_leaves_no_stub_video_and_the_frames_are_kept(tmp_path, monkeypatch, caplog):
    """On the H200 box, without imageio-ffmpeg, imageio gave .mp4 to tifffile: it wrote 8 bytes, then failed."""
    import imageio.v2 as imageio

    def failing_writer(path, **kwargs):
        path.write_bytes(b"II*\x00\x08\x00\x00\x00")
        raise TypeError("TiffWriter.write() got an unexpected keyword argument 'fps'")

    monkeypatch.setattr(imageio, "get_writer", failing_writer)
    with caplog.at_level(logging.WARNING):
        saved = save_videos([np.zeros((3, 32, 48, 3), dtype=np.uint8)], tmp_path, fps=8)
    assert not (tmp_path / "video_000.mp4").exists()
    assert sorted(p.rsplit("/", 1)[-1] for p in saved) == ["video_000.frames.npz", "video_000_frames"]
    assert len(list((tmp_path / "video_000_frames").glob("*.png"))) == 3
    assert "imageio-ffmpeg" in caplog.text
    assert output_shape_tags(saved, width=48, height=32, num_frames=3) == {names.OUTPUT_SHAPE: "48x32x3"}
