"""How kernels.bench measures: device time per call from CUDA-graph replays, host time per call apart.

A graph holds many back-to-back calls that cycle through several input sets (together larger than L2),
so the device time has neither Python/launch overhead nor L2-resident inputs in it; events around each
replay give its time, and the median over replays divided by the calls in it is the time per call. The
host time per call (Python, checks, dispatch, launch) is measured separately, as it decides how small a
kernel can be before the GPU waits for the CPU in eager mode.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

import torch
import triton
import triton.language as tl


def graph_ms_per_call(fns: list[Callable[[], object]], target_ms: float, replays: int) -> float:
    """Median device milliseconds per call of `fns` (one per input set), from CUDA-graph replays."""
    for fn in fns:  # warm-up: Triton/Inductor compilation, allocator growth
        fn()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for fn in fns:
            fn()
    torch.cuda.current_stream().wait_stream(side)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for fn in fns:
        fn()
    end.record()
    end.synchronize()
    estimate_ms = max(start.elapsed_time(end) / len(fns), 1e-3)
    rounds = max(1, min(200, math.ceil(target_ms / (estimate_ms * len(fns)))))

    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(rounds):
            for fn in fns:
                fn()
    graph.replay()
    samples = []
    for _ in range(replays):
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / (rounds * len(fns)))
    del graph
    return statistics.median(samples)


def cpu_ms_per_call(fns: list[Callable[[], object]], replays: int) -> float:
    """Median milliseconds per call on CPU (Triton interpreter: synchronous, so a host clock is right)."""
    fns[0]()
    samples = []
    for i in range(max(3, replays // 3)):
        begin = time.perf_counter()
        fns[i % len(fns)]()
        samples.append((time.perf_counter() - begin) * 1e3)
    return statistics.median(samples)


def host_us_per_call(fn: Callable[[], object], calls: int = 50) -> float:
    """Host microseconds per call of back-to-back launches (the device queue absorbs the kernels)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    begin = time.perf_counter()
    for _ in range(calls):
        fn()
    elapsed = time.perf_counter() - begin
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return elapsed / calls * 1e6


def copy_bandwidth_gbps(device: torch.device, gib: float, replays: int) -> float:
    """A device-to-device copy of `gib` GiB (`Tensor.copy_`, a kernel on the SMs): bytes read + written over
    the median time per copy.

    Timed with events around back-to-back copies, not in a CUDA graph: captured, a contiguous copy becomes a
    memcpy node that the copy engines run at ~2.4 TB/s on an H100 instead of ~3.0 (measured).
    """
    n = int(gib * 2**30) // 2
    src = torch.randn(n, device=device, dtype=torch.float32).to(torch.bfloat16)
    dst = torch.empty_like(src)
    if device.type != "cuda":
        ms = cpu_ms_per_call([lambda: dst.copy_(src)], replays)
        return 2 * n * 2 / (ms * 1e-3) / 1e9
    dst.copy_(src)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(replays):
        start.record()
        for _ in range(5):
            dst.copy_(src)
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / 5)
    return 2 * n * 2 / (statistics.median(samples) * 1e-3) / 1e9


def input_sets_for(nbytes_per_call: int, rotate_mib: float, max_sets: int = 16) -> int:
    """How many input sets to cycle through so that together they exceed `rotate_mib` (several L2s)."""
    return max(1, min(max_sets, math.ceil(rotate_mib * 2**20 / max(nbytes_per_call, 1))))


@triton.jit
def _copy_kernel(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    tl.store(dst_ptr + offsets, tl.load(src_ptr + offsets, mask=offsets < n), mask=offsets < n)


def same_size_copy_ms(nbytes: int, rotate_mib: float, target_ms: float, replays: int, device: torch.device) -> float:
    """Device ms of a plain copy moving `nbytes` (half read, half written), timed like the kernels.

    The 1 GiB copy sets the bandwidth ceiling; a 50 MB transfer cannot reach it (launch, ramp-up and the
    last wave cost a few µs whatever the kernel does), so this copy, of the same bytes as the kernel under
    test, shows how much of the gap at small shapes is the size. A Triton kernel rather than `Tensor.copy_`,
    which a CUDA graph turns into a copy-engine memcpy node.
    """
    n = max(1, nbytes // 4)  # bf16 elements per side
    sets = [
        (torch.empty(n, dtype=torch.bfloat16, device=device), torch.empty(n, dtype=torch.bfloat16, device=device))
        for _ in range(input_sets_for(nbytes, rotate_mib))
    ]
    if device.type != "cuda":
        return cpu_ms_per_call([lambda s=s: s[1].copy_(s[0]) for s in sets], replays)
    block = 4096
    fns = [lambda s=s: _copy_kernel[(triton.cdiv(n, block),)](s[0], s[1], n, BLOCK=block, num_warps=8) for s in sets]
    return graph_ms_per_call(fns, target_ms, replays)
