"""The architecture files (conf/arch/<name>.yaml) as plain data: where they are, which exist, what one says.

The config layer reads them for its checks (output grids, the floor's transformer); the models layer builds
pipelines from them. Both go through here."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from diffexp.config.store import CONF_DIR

ARCH_DIR = CONF_DIR / "arch"


def arch_path(name: str) -> Path:
    return ARCH_DIR / f"{name}.yaml"


def arch_names() -> list[str]:
    return sorted(p.stem for p in ARCH_DIR.glob("*.yaml"))


@cache
def arch_spec(name: str) -> Optional[dict[str, Any]]:
    """The file's content, resolved; None when conf/arch/ has no such file. Shared: do not modify it."""
    path = arch_path(name)
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True) if path.is_file() else None  # type: ignore[return-value]
