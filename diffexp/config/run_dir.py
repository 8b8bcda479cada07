"""Run directories unique by construction: `${unique_dir:outputs/<model>/<date>_<time>}` → `…_<suffix>`.

A timestamp alone changes once per second, so runs (and sweeps) started together would share a
directory and overwrite each other's files. The resolver creates the directory itself with an
atomic mkdir, retrying with a new suffix until one is free, so no two processes can get the same one.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from omegaconf import OmegaConf

RESOLVER = "unique_dir"
SUFFIX_BYTES = 2  # 4 hex digits: short to read; mkdir, not chance, guarantees uniqueness


def unique_dir(base: str) -> str:
    """Create `<base>_<suffix>` (parents too) and return it; never returns a directory that existed."""
    Path(base).parent.mkdir(parents=True, exist_ok=True)
    while True:
        candidate = f"{base}_{secrets.token_hex(SUFFIX_BYTES)}"
        try:
            Path(candidate).mkdir()
        except FileExistsError:
            continue
        return candidate


def register_resolver() -> None:
    # use_cache: every later read of hydra.run.dir / hydra.sweep.dir (Hydra's logging config, the sweep
    # callback, each sweep job's config, whose cache Hydra copies from the sweep's) gets the same directory.
    OmegaConf.register_new_resolver(RESOLVER, unique_dir, use_cache=True, replace=True)
