"""What a run ran on: versions, git state, GPUs and driver (recorded as MLflow tags)."""

from __future__ import annotations

import importlib.metadata
import socket
import subprocess
from functools import lru_cache
from pathlib import Path

from diffexp.gpus import nvidia_smi


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str, cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(cwd: Path | None = None) -> dict[str, str]:
    """Commit and dirty flag of the diffexp checkout (falls back to the working directory's repo)."""
    for where in (Path(__file__).resolve().parent, cwd or Path.cwd()):
        commit = _git("rev-parse", "HEAD", cwd=where)
        if commit:
            dirty = _git("status", "--porcelain", "--untracked-files=no", cwd=where)
            return {"git.commit": commit, "git.dirty": str(bool(dirty)).lower()}
    return {"git.commit": "unknown", "git.dirty": "unknown"}


@lru_cache(maxsize=1)
def gpu_info() -> dict[str, str]:
    tags: dict[str, str] = {}
    rows = nvidia_smi(["name", "driver_version"], timeout_s=20) or []
    if rows:
        tags["gpu.names"] = "; ".join(r[0] for r in rows)
        tags["gpu.count"] = str(len(rows))
        tags["gpu.driver"] = rows[0][1] if len(rows[0]) > 1 else "unknown"
    else:
        tags["gpu.names"] = "none"
        tags["gpu.count"] = "0"
    return tags


def environment_tags() -> dict[str, str]:
    tags = {
        "host": socket.gethostname(),
        "version.diffexp": _version("diffexp"),
        "version.torch": _version("torch"),
        "version.diffusers": _version("diffusers"),
        "version.transformers": _version("transformers"),
        "version.sglang": _version("sglang"),
    }
    try:
        import torch

        tags["cuda"] = torch.version.cuda or "none"
    except ImportError:
        tags["cuda"] = "none"
    return {**tags, **git_state(), **gpu_info()}
