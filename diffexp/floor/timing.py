"""The device's own speed at exactly the counted shapes: each distinct GEMM, convolution and attention
shape timed alone, and the copy bandwidth for the memory-bound bytes.

Timed as kernels.bench times its kernels (kernels/bench_timing.py). On CUDA: CUDA-graph replays of
back-to-back calls over several input sets together larger than L2 (weights are not in L2 in a real forward
either), CUDA events around each replay, the median over replays per call; nvidia-smi samples SM clock,
power and clock-event reasons meanwhile, recorded beside the times. On CPU, where every op is synchronous,
the host clock around single calls cycling through the same input sets, the median over samples.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from diffexp.floor.shapes import AttentionShape, ConvShape, GemmShape, Shape

log = logging.getLogger(__name__)

# Rotating input sets add up to this much, several times an H100/H200's 50–60 MB of L2.
ROTATE_MIB = 256.0
COPY_GIB = 1.0
# Devices the floor is timed on; the meta device (a full-size model counted without a GPU) has shapes only.
MEASURABLE = ("cuda", "cpu")
# On CPU: a copy of several times a server's last-level cache (tens of MB) that a small CI box still holds
# (its float32 source is drawn first: 4× this in all), and 30 replays = kernels.bench's 10 host-clock samples.
CPU_COPY_GIB = 0.125
CPU_REPLAYS = 30


@dataclass
class DeviceTimings:
    """Measured ms per call of every shape, and the device-to-device copy bandwidth (read + write)."""

    shape_ms: dict[Shape, float]
    copy_gbps: float
    device: str
    attention_backend: str
    gpu: dict = field(default_factory=dict)
    # On CPU: the 1-minute load average before and after timing (other processes share the cores; a
    # contended core stalls torch's threads for whole scheduler slices, some ms a call).
    host: dict = field(default_factory=dict)


def _dtype(name: str, override: Optional[torch.dtype]) -> torch.dtype:
    return override or getattr(torch, name)


def _randn(shape, dtype, device) -> torch.Tensor:
    return torch.randn(shape, device=device, dtype=torch.float32).to(dtype)


def gemm_call(shape: GemmShape, device: torch.device, dtype: Optional[torch.dtype] = None) -> Callable[[], object]:
    """The op the model ran (addmm / mm / bmm / baddbmm = F.linear's), on fresh inputs of the shape."""
    dt = _dtype(shape.dtype, dtype)
    lead = (shape.batch,) if shape.batch > 1 else ()
    a = _randn((*lead, shape.m, shape.k), dt, device)
    b = _randn((*lead, shape.n, shape.k), dt, device).transpose(-1, -2) if shape.b_transposed else None
    if b is None:
        b = _randn((*lead, shape.k, shape.n), dt, device)
    bias = _randn((shape.n,), dt, device) if shape.bias else None
    if shape.batch > 1:
        return (lambda: torch.baddbmm(bias, a, b)) if bias is not None else (lambda: torch.bmm(a, b))
    return (lambda: torch.addmm(bias, a, b)) if bias is not None else (lambda: torch.mm(a, b))


def conv_call(shape: ConvShape, device: torch.device, dtype: Optional[torch.dtype] = None) -> Callable[[], object]:
    dt = _dtype(shape.dtype, dtype)
    x, w = _randn(shape.input, dt, device), _randn(shape.weight, dt, device)
    b = _randn((shape.weight[1] * shape.groups if shape.transposed else shape.weight[0],), dt, device)
    args = (shape.stride, shape.padding, shape.dilation, shape.transposed, shape.output_padding, shape.groups)
    return lambda: torch.ops.aten.convolution(x, w, b if shape.bias else None, *args)


def _qkv(shape: AttentionShape, dt: torch.dtype, device: torch.device, layout: str):
    def one(seq: int, dim: int) -> torch.Tensor:
        if layout == "bshd":  # (B, S, H, D), as flash-attn takes it and diffusers builds it
            return _randn((shape.batch, seq, shape.heads, dim), dt, device)
        return _randn((shape.batch, shape.heads, seq, dim), dt, device)

    return one(shape.q_len, shape.head_dim), one(shape.kv_len, shape.head_dim), one(shape.kv_len, shape.v_head_dim)


def _sdpa(shape: AttentionShape, device, dt) -> Callable[[], object]:
    q, k, v = _qkv(shape, dt, device, shape.layout)
    if shape.layout == "bshd":  # the transposed views diffusers' native backend passes
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    mask = _randn(shape.mask, dt, device) if shape.mask else None

    return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=shape.causal)


def _flash_attn(module: str):
    def make(shape: AttentionShape, device, dt) -> Callable[[], object]:
        import importlib

        fn = importlib.import_module(module).flash_attn_func
        q, k, v = _qkv(shape, dt, device, "bshd")
        return lambda: fn(q, k, v, causal=shape.causal)

    return make


def attention_call(
    shape: AttentionShape, device: torch.device, backend: Optional[str], dtype: Optional[torch.dtype] = None
) -> tuple[Callable[[], object], str]:
    """The attention the run would use (`attention.backend`), and the name of what is timed.

    The default and `torch_sdpa` are PyTorch's SDPA with its own kernel choice (diffusers' native
    backend); `fa` / `fa3` are the flash-attn packages where installed. Any other backend, and a missing
    package, are timed as SDPA too, and the result names what was timed.
    """
    dt = _dtype(shape.dtype, dtype)
    packages = {"fa": "flash_attn", "fa3": "flash_attn_interface"}
    if backend in packages and not shape.mask:
        try:
            return _flash_attn(packages[backend])(shape, device, dt), packages[backend]
        except ImportError:
            _warn_once(f"attention.backend={backend}: {packages[backend]} is not installed; timing SDPA")
    elif backend not in (None, "torch_sdpa"):
        _warn_once(f"attention.backend={backend}: not timed as such here; timing SDPA")
    return _sdpa(shape, device, dt), "sdpa"


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def _bytes_per_call(shape: Shape) -> int:
    itemsize = 4 if shape.dtype == "float32" else 2
    if isinstance(shape, GemmShape):
        return shape.batch * (shape.m * shape.k + shape.k * shape.n + shape.m * shape.n) * itemsize
    if isinstance(shape, AttentionShape):
        b, h = shape.batch, shape.heads
        return (
            b * h * (shape.q_len * (2 * shape.head_dim) + shape.kv_len * (shape.head_dim + shape.v_head_dim)) * itemsize
        )
    from math import prod

    return (prod(shape.input) + prod(shape.weight) + prod(shape.output)) * itemsize


def shape_calls(
    shape: Shape,
    device: torch.device,
    attention_backend: Optional[str] = None,
    dtype: Optional[torch.dtype] = None,
    max_sets: int = 16,
) -> tuple[list[Callable[[], object]], Optional[str]]:
    """The shape's op on as many fresh input sets as add up to ROTATE_MIB (at most `max_sets`), and for an
    attention shape the name of what is timed (None for the others)."""
    from kernels.bench_timing import input_sets_for

    sets = input_sets_for(_bytes_per_call(shape), ROTATE_MIB, max_sets)
    if isinstance(shape, AttentionShape):
        made = [attention_call(shape, device, attention_backend, dtype) for _ in range(sets)]
        return [c for c, _ in made], made[0][1]
    if isinstance(shape, ConvShape):
        return [conv_call(shape, device, dtype) for _ in range(sets)], None
    return [gemm_call(shape, device, dtype) for _ in range(sets)], None


def measure(
    shapes: Iterable[Shape],
    device: torch.device,
    attention_backend: Optional[str] = None,
    dtype: Optional[torch.dtype] = None,
    target_ms: float = 2.0,
    replays: int = 10,
) -> DeviceTimings:
    """Time every distinct shape on `device` (CUDA or CPU) and its copy bandwidth."""
    from diffexp.bench.transformer_ab import gpu_sampler, sampler_summary
    from kernels.bench_timing import copy_bandwidth_gbps, cpu_ms_per_call, graph_ms_per_call

    if device.type not in MEASURABLE:
        raise ValueError(f"measuring the floor needs a CUDA or CPU device, not {device}")
    cuda = device.type == "cuda"
    shapes = list(dict.fromkeys(shapes))
    shape_ms: dict[Shape, float] = {}
    timed_as = "sdpa"
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, torch.cuda.device(device) if cuda else nullcontext():
        samples = Path(tmp) / "smi.csv"
        with gpu_sampler(samples) if cuda else nullcontext():
            copy_gbps = copy_bandwidth_gbps(device, COPY_GIB if cuda else CPU_COPY_GIB, replays)
            for shape in tqdm(shapes, desc="timing shapes", unit="shape", leave=False):
                calls, shape_timed_as = shape_calls(shape, device, attention_backend, dtype)
                timed_as = shape_timed_as or timed_as
                if cuda:
                    shape_ms[shape] = graph_ms_per_call(calls, target_ms, replays)
                    del calls
                    torch.cuda.empty_cache()
                else:
                    shape_ms[shape] = cpu_ms_per_call(calls, CPU_REPLAYS)
        gpu = sampler_summary(samples) if cuda else {}
    host = {} if cuda else {"load_avg_1m_before": load_before, "load_avg_1m_after": os.getloadavg()[0]}
    return DeviceTimings(shape_ms, copy_gbps, device_name(device), timed_as, gpu, host)


def device_name(device: torch.device) -> str:
    """What the timings were taken on: the GPU's name, or the CPU with the threads torch ran on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"
