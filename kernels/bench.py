"""The kernel micro-benchmark: time every kernel against its PyTorch contenders at DiT shapes.

Run by `python -m diffexp.bench.kernels` (conf/kernel_bench.yaml, Hydra), which also logs it to MLflow. For each kernel, shape and dtype and each contender: device
time per call (CUDA-graph replays over rotating input sets, see bench_timing.py), effective bandwidth (least
bytes read + written over that time), its share of the copy bandwidth measured in the same run, and the
host time per call, and a plain copy of the same bytes (what the transfer size alone allows). Results go to
results.json / results.md in the output directory and a table on stdout.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch

from diffexp.errors import ConfigError
from kernels.bench_cases import CASES, HEAD_DIM, BenchCase, bytes_moved, max_rel_error
from kernels.bench_report import Timing, write_results
from kernels.bench_timing import (
    copy_bandwidth_gbps,
    cpu_ms_per_call,
    graph_ms_per_call,
    host_us_per_call,
    input_sets_for,
    same_size_copy_ms,
)

log = logging.getLogger(__name__)

IMPLS = ("triton", "eager", "builtin", "compile")
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass
class KernelBenchConfig:
    shapes: list[Any] = field(default_factory=lambda: [[1, 4096, 3072], [1, 32760, 5120], [2, 4608, 3072]])
    dtypes: list[str] = field(default_factory=lambda: ["bfloat16"])
    # Named `ops`, not `kernels`: conf/kernels/ is a config group, and Hydra would read kernels=... as a choice of it.
    ops: list[str] = field(default_factory=lambda: list(CASES))
    # Contenders besides triton: eager (the module's reference), builtin, compile (torch.compile of the reference).
    baselines: list[str] = field(default_factory=lambda: ["eager", "builtin", "compile"])
    # One CUDA-graph replay lasts about graph_ms; the median of `replays` replays is reported.
    graph_ms: float = 10.0
    replays: int = 15
    # Input sets are cycled until together they exceed this (several L2s): no call finds its inputs in L2.
    rotate_mib: float = 256.0
    copy_gib: float = 1.0
    # Also time a grid of (block_m, num_warps) launch configs for the Triton kernels.
    sweep: bool = False
    sweep_configs: list[Any] = field(default_factory=lambda: [[1, 4], [1, 8], [1, 16], [2, 4], [2, 8], [4, 4]])
    seed: int = 0
    # None: Hydra's run directory.
    output_dir: Optional[str] = None
    # Named `log_mlflow`, not `tracking`, for the same reason (conf/tracking/ is a group).
    log_mlflow: bool = True
    # None: the one store rule of every diffexp command ($MLFLOW_TRACKING_URI, else ./mlruns/mlflow.db).
    tracking_uri: Optional[str] = None
    experiment: str = "kernel_bench"


def validate(cfg: KernelBenchConfig) -> None:
    problems = [f"ops: unknown {k!r}; choose from {sorted(CASES)}" for k in cfg.ops if k not in CASES]
    problems += [f"dtypes: unknown {d!r}; choose from {sorted(DTYPES)}" for d in cfg.dtypes if d not in DTYPES]
    problems += [f"baselines: unknown {b!r}; choose from {IMPLS[1:]}" for b in cfg.baselines if b not in IMPLS[1:]]
    problems += [
        f"shapes: {s!r} is not [batch, seq, hidden] of positive ints"
        for s in cfg.shapes
        if len(s) != 3 or any(int(v) <= 0 for v in s)
    ]
    if "qk_norm_rope" in cfg.ops:
        problems += [
            f"shapes: hidden {s[2]} is not a multiple of head_dim {HEAD_DIM} (needed by qk_norm_rope)"
            for s in cfg.shapes
            if len(s) == 3 and int(s[2]) % HEAD_DIM
        ]
    if problems:
        raise ConfigError(problems)


def _contenders(case: BenchCase, baselines: list[str], compiled: dict[str, Callable]) -> dict[str, Callable]:
    table = {"triton": case.triton, "eager": case.reference, "builtin": case.builtin}
    if "compile" in baselines:
        table["compile"] = compiled.setdefault(case.name, torch.compile(case.reference, dynamic=False))
    return {impl: fn for impl, fn in table.items() if impl == "triton" or impl in baselines}


def bench_case(
    case: BenchCase, shape: list[int], dtype_name: str, cfg: KernelBenchConfig, device: torch.device,
    copy_gbps: float, compiled: dict[str, Callable],
) -> list[Timing]:  # fmt: skip
    batch, seq, hidden = (int(v) for v in shape)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    first = case.make_inputs(batch, seq, hidden, DTYPES[dtype_name], device, gen)
    nbytes = bytes_moved(case, first)
    input_sets = [first] + [
        case.make_inputs(batch, seq, hidden, DTYPES[dtype_name], device, gen)
        for _ in range(input_sets_for(nbytes, cfg.rotate_mib) - 1)
    ]
    reference = case.reference(first)
    shape_name = f"{batch}x{seq}x{hidden}"
    timings = []

    def record(impl: str, call: Callable[[dict], object], err: Optional[float], host: bool) -> None:
        fns = [functools.partial(call, inputs) for inputs in input_sets]
        if device.type == "cuda":
            ms = graph_ms_per_call(fns, cfg.graph_ms, cfg.replays)
        else:
            ms = cpu_ms_per_call(fns, cfg.replays)
        host_us = host_us_per_call(fns[0], calls=20 if device.type == "cuda" else 2) if host else None
        gbps = nbytes / (ms * 1e-3) / 1e9
        timings.append(
            Timing(case.name, shape_name, dtype_name, impl, ms * 1e3, gbps, 100 * gbps / copy_gbps, host_us, err)
        )

    for impl, fn in _contenders(case, cfg.baselines, compiled).items():
        record(impl, fn, max_rel_error(fn(first), reference), host=True)
    copy_ms = same_size_copy_ms(nbytes, cfg.rotate_mib, cfg.graph_ms, cfg.replays, device)
    copy_rate = nbytes / (copy_ms * 1e-3) / 1e9
    timings.append(
        Timing(case.name, shape_name, dtype_name, "copy", copy_ms * 1e3, copy_rate, 100 * copy_rate / copy_gbps)
    )
    if cfg.sweep:
        configs = [tuple(c) for c in cfg.sweep_configs]
        if not case.sweeps_rows:  # only num_warps matters
            configs = list(dict.fromkeys((1, w) for _, w in configs))
        for block_m, num_warps in configs:
            launch = lambda i, o=(block_m, num_warps): case.launch(i, o)  # noqa: E731
            record(f"triton[m{block_m},w{num_warps}]", launch, None, host=False)
    input_sets.clear()  # free the inputs before the next case allocates its own
    del first, reference
    return timings


def run_bench(cfg: KernelBenchConfig) -> tuple[list[Timing], dict[str, Any]]:
    """Time every (kernel, shape, dtype, contender); returns the timings and the run's environment."""
    import triton

    validate(cfg)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    copy_gbps = copy_bandwidth_gbps(device, cfg.copy_gib, cfg.replays)
    env = {
        "device": (
            torch.cuda.get_device_name()
            if device.type == "cuda"
            else "cpu (Triton interpreter; times are not GPU times)"
        ),
        "copy_gbps": copy_gbps,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "ops": ",".join(cfg.ops),
        "shapes": str(cfg.shapes),
        "dtypes": ",".join(cfg.dtypes),
    }
    log.info("device %s, copy bandwidth %.0f GB/s", env["device"], copy_gbps)
    compiled: dict[str, Callable] = {}
    timings: list[Timing] = []
    for name in cfg.ops:
        for shape in cfg.shapes:
            for dtype_name in cfg.dtypes:
                timings += bench_case(CASES[name], shape, dtype_name, cfg, device, copy_gbps, compiled)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    return timings, env


def main_from_config(
    cfg: KernelBenchConfig, default_out: Path
) -> tuple[list[Timing], dict[str, Any], tuple[Path, ...]]:
    """Time, write results.json / results.md (printed too); the driver (diffexp.bench.kernels) logs them."""
    timings, env = run_bench(cfg)
    files = write_results(timings, env, Path(cfg.output_dir) if cfg.output_dir else default_out)
    print(files[1].read_text())
    print(f"results: {files[0]} and {files[1]}")
    return timings, env, files
