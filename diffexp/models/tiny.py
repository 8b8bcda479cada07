"""The built-in tiny models: built once with seeded random weights, saved with save_pretrained,
then always loaded through the ordinary from_pretrained path, exactly like a real checkpoint."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from diffexp.models.arch import arch_path, build_pipeline

log = logging.getLogger(__name__)

TINY_SEED = 0
# Part of the cache key: bump when the builder's initialisation changes, so cached tiny models are rebuilt.
BUILD_SCHEME = "meta-init-1"


def cache_root() -> Path:
    return Path(os.environ.get("DIFFEXP_CACHE", Path.home() / ".cache" / "diffexp"))


def ensure_tiny_checkpoint(name: str) -> Path:
    """Return the diffusers-format directory of tiny model `name`, building it on first use.

    The directory name carries a hash of the architecture file and library versions, so editing
    the architecture rebuilds it; the build is written to a temp dir and renamed into place so
    concurrent runs never see a half-written checkpoint.
    """
    import diffusers
    import transformers

    digest = hashlib.sha256(
        arch_path(name).read_bytes()
        + f"{diffusers.__version__}/{transformers.__version__}/{TINY_SEED}/{BUILD_SCHEME}".encode()
    ).hexdigest()[:12]
    target = cache_root() / "tiny" / f"{name}-{digest}"
    if (target / "model_index.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("building tiny model %s into %s", name, target)
    pipe = build_pipeline(name, seed=TINY_SEED, device="cpu", dtype=torch.float32)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    pipe.save_pretrained(staging)
    try:
        staging.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return target
