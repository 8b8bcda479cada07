"""The environment an `sglang generate` run gets: fixed variables, the run's profiler dir, GPU choice."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Optional

from diffexp.config.schema import Config
from diffexp.engines.sglang.flags import RunPaths
from diffexp.gpus import no_nvlink_multicast, nvidia_smi

log = logging.getLogger(__name__)

# SGLang's StageProfiler synchronises the device around each stage and step only with this set (perf_logger.py).
SYNC_STAGE_PROFILING = "SGLANG_DIFFUSION_SYNC_STAGE_PROFILING"

GPU_FIELDS = ["index", "memory.used", "utilization.gpu"]


@dataclass(frozen=True)
class GpuState:
    index: int
    memory_used_mib: float
    utilization_pct: float


def parse_gpu_rows(rows: list[list[str]]) -> list[GpuState]:
    """Rows of `index, memory.used, utilization.gpu` (no units); unreadable rows are skipped."""
    gpus = []
    for parts in rows:
        try:
            gpus.append(GpuState(int(parts[0]), float(parts[1]), float(parts[2])))
        except (ValueError, IndexError):
            continue  # e.g. "[N/A]" utilization on some boards
    return gpus


def query_gpus() -> Optional[list[GpuState]]:
    """This machine's GPUs as nvidia-smi reports them; None without a working nvidia-smi."""
    rows = nvidia_smi(GPU_FIELDS)
    return None if rows is None else parse_gpu_rows(rows)


def pick_idle(gpus: list[GpuState], count: int) -> list[int]:
    """The `count` GPUs with the least memory in use, then the lowest utilization; listed by index."""
    ranked = sorted(gpus, key=lambda g: (g.memory_used_mib, g.utilization_pct, g.index))
    return sorted(g.index for g in ranked[:count])


def choose_gpus(cfg: Config, gpus: Optional[list[GpuState]] = None) -> tuple[Optional[str], str]:
    """(CUDA_VISIBLE_DEVICES value or None to leave it alone, why) for this run."""
    if cfg.engine.device == "cpu":
        return "", "engine.device=cpu: GPUs hidden"
    if cfg.engine.gpus:
        ids = ",".join(part.strip() for part in str(cfg.engine.gpus).split(",") if part.strip())
        return ids, f"engine.gpus={cfg.engine.gpus}"
    gpus = query_gpus() if gpus is None else gpus
    if not gpus:
        return None, "no nvidia-smi answer; CUDA_VISIBLE_DEVICES left as it is"
    chosen = pick_idle(gpus, cfg.parallel.num_gpus)
    detail = ", ".join(f"{g.index}: {g.memory_used_mib:.0f} MiB, {g.utilization_pct:.0f}%" for g in gpus)
    return ",".join(map(str, chosen)), f"idle GPUs by memory in use / utilization ({detail})"


def run_env(cfg: Config, paths: RunPaths, cuda_visible: Optional[str]) -> dict[str, str]:
    """The variables this run sets on top of the inherited environment (engine.env wins, but for NVLink multicast,
    which stays off)."""
    env = {
        "FLASHINFER_DISABLE_VERSION_CHECK": "1",
        # SGLang reads the diffusion-specific variable first, then the generic one.
        "SGLANG_TORCH_PROFILER_DIR": str(paths.traces),
        "SGLANG_DIFFUSION_TORCH_PROFILER_DIR": str(paths.traces),
    }
    if cfg.engine.sync_stage_profiling:
        env[SYNC_STAGE_PROFILING] = "1"
    if cfg.engine.hf_offline:
        env["HF_HUB_OFFLINE"] = "1"
    if cuda_visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible
    env.update({str(k): str(v) for k, v in cfg.engine.env.items()})
    return no_nvlink_multicast(env)


def has_hf_token() -> bool:
    if os.environ.get("HF_TOKEN"):
        return True
    try:
        from huggingface_hub import get_token

        return bool(get_token())
    except Exception:  # no huggingface_hub, or an unreadable token file: treat as no token
        return False


def gated_warning(cfg: Config) -> Optional[str]:
    if cfg.model.gated and not cfg.engine.hf_offline and not has_hf_token():
        return (
            f"model {cfg.model.path!r} is a gated Hugging Face repo and HF_TOKEN is not set: "
            "the download will fail unless the weights are already cached (export HF_TOKEN=...)"
        )
    return None
