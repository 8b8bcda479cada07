"""GPUs, one home for every module: which GPUs this process may use, how an id given in `engine.gpus` (named as
CUDA_VISIBLE_DEVICES names them) maps to torch's index, and what nvidia-smi says of them (no CUDA context)."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping
from typing import Optional

from diffexp.errors import DiffexpError

log = logging.getLogger(__name__)

# NVLink multicast (NVLS) off in every process that may talk NCCL, NVSHMEM or torch's symmetric memory: on shared
# hosts a program that uses it can put every GPU of the host out of service.
NO_NVLINK_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def no_nvlink_multicast(env: dict[str, str], inherited: Mapping[str, str] = os.environ) -> dict[str, str]:
    """`env` with NO_NVLINK_MULTICAST set over whatever it (or the `inherited` environment under it) held, and a
    warning for each value overridden."""
    for key, value in NO_NVLINK_MULTICAST.items():
        was = env.get(key, inherited.get(key))
        if was is not None and was != value:
            log.warning("%s=%s overridden with %s: NVLink multicast stays off on shared hosts", key, was, value)
        env[key] = value
    return env


def multicast_settings(env: Mapping[str, str] = os.environ) -> str:
    """The NVLink multicast variables as a process has them (for its log)."""
    return " ".join(f"{key}={env.get(key)}" for key in NO_NVLINK_MULTICAST)


def visible_gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken driver counts as no GPU; the engine will say more
        return 0


def visible_gpu_ids() -> list[str]:
    """The GPU ids this process may use: CUDA_VISIBLE_DEVICES when set, else every GPU torch sees."""
    count = visible_gpu_count()
    listed = _cuda_visible_devices()
    if listed is not None:
        # CUDA stops at the first id that does not exist: only the leading `count` ids are real.
        return listed[:count]
    return [str(i) for i in range(count)]


def _cuda_visible_devices() -> Optional[list[str]]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    return None if env is None else [g.strip() for g in env.split(",") if g.strip()]


def torch_index(gpu_id: str) -> int:
    """torch's CUDA index of a GPU named as `engine.gpus` and the leases name them: an entry of
    CUDA_VISIBLE_DEVICES when it is set (torch numbers the visible GPUs from 0), else an index."""
    gpu_id = gpu_id.strip()
    ids = _cuda_visible_devices()
    if ids is not None:
        if gpu_id not in ids:
            raise DiffexpError(
                f"engine.gpus: GPU {gpu_id!r} is not one of CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}; "
                f"allowed: {', '.join(ids) or 'none'}"
            )
        return ids.index(gpu_id)
    if not gpu_id.isdigit():
        raise DiffexpError(
            f"engine.gpus: {gpu_id!r} is not a GPU index (0, 1, ...) and CUDA_VISIBLE_DEVICES is not set"
        )
    return int(gpu_id)


def nvidia_smi(fields: list[str], timeout_s: float = 30) -> Optional[list[list[str]]]:
    """One row of `fields` per GPU from `nvidia-smi --query-gpu` (no units), without creating a CUDA context in
    this process; None when there is no working nvidia-smi."""
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return [[part.strip() for part in row.split(",")] for row in out.stdout.strip().splitlines() if row.strip()]
