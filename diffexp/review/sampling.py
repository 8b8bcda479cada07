"""Whether two runs' outputs are comparable: the sampling parameters that must match (pure: no MLflow, so the
tuner's gate can use it on a GPU box without it)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

# What must match for two runs' outputs to be comparable (fps only affects the MP4's playback).
SAMPLING_FIELDS = (
    "prompt",
    "negative_prompt",
    "seed",
    "width",
    "height",
    "resolution",
    "num_frames",
    "num_inference_steps",
    "guidance_scale",
    "image_path",
)
SAMPLING_KEYS = tuple(f"model.sampling.{f}" for f in SAMPLING_FIELDS)


def _same(a: Optional[str], b: Optional[str], key: str) -> bool:
    a = None if a in (None, "None") else a
    b = None if b in (None, "None") else b
    if a == b:
        return True
    if a is None or b is None:
        return False
    try:
        return float(a) == float(b)
    except ValueError:
        pass
    if key.endswith(".image_path") and Path(a).is_file() and Path(b).is_file():
        # The same input image at two locations (e.g. another machine's asset folder) is the same input.
        return hashlib.sha256(Path(a).read_bytes()).digest() == hashlib.sha256(Path(b).read_bytes()).digest()
    return False


def sampling_mismatches(run_params: Mapping[str, str], reference_params: Mapping[str, str]) -> list[str]:
    """Each differing sampling parameter with both values; empty when the outputs are comparable."""
    out = []
    for key in SAMPLING_KEYS:
        mine, theirs = run_params.get(key), reference_params.get(key)
        if not _same(mine, theirs, key):
            out.append(f"{key}: run {mine!r}, reference {theirs!r}")
    return out
