"""What a run's weights will occupy, known before anything is allocated, and a refusal when this machine lacks it.

Each component of the architecture (conf/arch/) is built on the meta device (no memory) and its parameters
counted; bytes = floating parameters × the run's dtype size + the rest at their own size. Counts are cached
per architecture file (a full-size meta build takes seconds), so a launch pays that once per arch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from functools import cache
from typing import Optional

from diffexp.config.schema import Config
from diffexp.errors import ConfigError
from diffexp.models.arch import arch_path, build_empty_model, is_model, load_arch

log = logging.getLogger(__name__)

GIB = 2**30
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
# The offload switches that keep (some) weights in host memory instead of on the GPU.
OFFLOAD_FIELDS = ("dit_cpu", "dit_layerwise", "text_encoder_cpu", "image_encoder_cpu", "vae_cpu")


def _cache_file(arch: str):
    import diffusers
    import transformers

    from diffexp.models.tiny import cache_root

    digest = hashlib.sha256(
        arch_path(arch).read_bytes() + f"{diffusers.__version__}/{transformers.__version__}".encode()
    ).hexdigest()[:12]
    return cache_root() / "footprint" / f"{arch}-{digest}.json"


@cache
def parameter_counts(arch: str) -> dict[str, dict[str, int]]:
    """Per model component: {"floating": parameters stored in the run's dtype, "other_bytes": the rest}."""
    path = _cache_file(arch)
    if path.is_file():
        return json.loads(path.read_text())
    counts = {}
    for name, spec in load_arch(arch)["components"].items():
        if "class" not in spec or not is_model(spec):
            continue
        params = list(build_empty_model(spec).parameters())
        counts[name] = {
            "floating": sum(p.numel() for p in params if p.is_floating_point()),
            "other_bytes": sum(p.numel() * p.element_size() for p in params if not p.is_floating_point()),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(counts))
    tmp.replace(path)  # atomic: a concurrent launch reads the whole file or none
    return counts


def weight_bytes(arch: str, dtype: str) -> dict[str, int]:
    """Bytes of each model component's weights in `dtype` (model.dtype's spelling)."""
    size = DTYPE_BYTES[dtype]
    return {name: c["floating"] * size + c["other_bytes"] for name, c in parameter_counts(arch).items()}


def _gpu_free_bytes() -> dict[str, int]:
    """Free memory per GPU by index and UUID, from nvidia-smi: no CUDA context is created in this process (an
    SGLang run's parent would keep one for the whole run). Empty when nvidia-smi cannot say."""
    from diffexp.gpus import nvidia_smi

    rows = nvidia_smi(["index", "uuid", "memory.free"])
    if rows is None:
        log.warning("resource check: no answer from nvidia-smi; GPU memory not checked")
        return {}
    free = {}
    for index, uuid, mib in (row[:3] for row in rows if len(row) >= 3):
        free[index] = free[uuid] = int(float(mib)) * 2**20
    return free


def _uses_cuda(cfg: Config) -> bool:
    from diffexp.gpus import visible_gpu_count

    if cfg.engine.name == "sglang":
        return cfg.engine.device != "cpu"
    return cfg.engine.device == "cuda" or (cfg.engine.device == "auto" and visible_gpu_count() > 0)


def _available(cfg: Config) -> tuple[int, str]:
    """Bytes the weights may occupy on this machine, and where that figure comes from."""
    import psutil

    host = psutil.virtual_memory().available
    if not _uses_cuda(cfg):
        return host, "available host memory"
    from diffexp.gpus import visible_gpu_ids

    free = _gpu_free_bytes()
    ids = [g.strip() for g in cfg.engine.gpus.split(",")] if cfg.engine.gpus else visible_gpu_ids()
    per_gpu = sorted((free[g] for g in ids if g in free), reverse=True)[: cfg.parallel.num_gpus]
    if not per_gpu:
        return -1, "unknown"
    # Tensor parallelism shards the weights; sequence and CFG parallelism give every GPU all of them.
    shards = cfg.parallel.tp_degree or 1
    gpu = min(per_gpu) * shards
    where = f"free memory of the emptiest of {len(per_gpu)} GPU(s)" + (f" × tp_degree {shards}" if shards > 1 else "")
    if any(getattr(cfg.offload, f) for f in OFFLOAD_FIELDS):
        return gpu + host, where + " + available host memory (offload)"
    return gpu, where


def _format(components: dict[str, int]) -> str:
    return ", ".join(f"{name} {b / GIB:.1f}" for name, b in sorted(components.items(), key=lambda kv: -kv[1]))


def resource_problems(cfg: Config, available: Optional[tuple[int, str]] = None) -> list[str]:
    """Problems that would end the run in the OOM killer or an allocation failure minutes in: weights larger
    than the memory they must fit in. `available` (bytes, where) overrides this machine's figure."""
    m = cfg.model
    if cfg.engine.skip_resource_check or cfg.engine.dry_run or m.weights not in ("random", "pretrained") or not m.arch:
        return []
    if cfg.engine.name != "diffusers":
        return []  # SGLang places its own weights (and offloads them in its auto mode): its own check applies

    components = weight_bytes(m.arch, m.dtype)
    need = sum(components.values())
    have, where = available if available is not None else _available(cfg)
    if have < 0 or need <= have:
        return []
    return [
        f"model={m.name} model.weights={m.weights}: needs {need / GIB:.1f} GiB of weights in {m.dtype} "
        f"({_format(components)}); this machine has {have / GIB:.1f} GiB available ({where}). Use a smaller model "
        "or dtype, offload, more GPUs with tensor parallelism, or set engine.skip_resource_check=true to try anyway"
    ]


def check_resources(cfg: Config) -> None:
    """Right after check_launch: refuse what cannot fit, warn about CPU parallel runs oversubscribing cores."""
    problems = resource_problems(cfg)
    if problems:
        raise ConfigError(problems)
    cores = os.cpu_count() or 1
    if not _uses_cuda(cfg) and cfg.parallel.num_gpus > cores:
        log.warning(
            "parallel.num_gpus=%d on the CPU: more ranks than this machine's %d CPU cores; they will time-share "
            "the cores, so the timings say little about parallel speed-up",
            cfg.parallel.num_gpus,
            cores,
        )
