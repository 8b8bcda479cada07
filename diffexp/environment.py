"""What a run ran on: versions, git state, GPUs and driver (recorded as MLflow tags)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import socket
import subprocess
import sys
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
    tags["cuda"] = torch_cuda_version()
    return {**tags, **git_state(), **gpu_info()}


_CUDA_LINE = re.compile(r"""^cuda\s*(?::[^=]*)?=\s*['"]([^'"]+)['"]""", re.M)


def torch_cuda_version() -> str:
    """The CUDA version torch was built for, "none" for a CPU build. Read from torch/version.py when torch is not
    loaded: importing it costs seconds, and a run's tracking agent (diffexp/run/agent.py) has no other use for it."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return getattr(torch.version, "cuda", None) or "none"
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return "none"
    try:
        text = (Path(next(iter(spec.submodule_search_locations))) / "version.py").read_text()
    except OSError:
        return "none"
    found = _CUDA_LINE.search(text)
    return found.group(1) if found else "none"
