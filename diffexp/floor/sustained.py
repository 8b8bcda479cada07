"""The floor under sustained load: the counted work of one step run as one synthetic step, over and over.

Each shape timed alone (diffexp.floor.timing) runs for some ms, too short for a power-capped GPU to leave its
boost clock: on an H200 the shapes were timed at ~1880 MHz and ~200–260 W, while the step itself runs at the
700 W cap at ~1600 MHz. That floor cannot be sustained by the work it describes. Here the same work, every
counted GEMM, convolution and attention call with its count, and the memory-bound bytes as an elementwise
pass, is captured as one CUDA graph (no launch gaps, nothing but the ideal kernels) and replayed back to back
for HEAT_S seconds, until the power controller has settled; then replays are timed with CUDA events while
nvidia-smi samples the clocks. Its median is the sustained floor: what this device does with this step's
work at the clocks that work lets it keep.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from diffexp.floor.count import ForwardCounts
from diffexp.floor.timing import shape_calls

log = logging.getLogger(__name__)

HEAT_S = 4.0  # an H200's clocks reach their capped level within ~1 s of full load (tests/fixtures NVML record)
MIN_HEAT_REPLAYS = 3
TIMED_REPLAYS = 10
# A long step (Wan2.2-T2V-A14B at 720p: ~20 s, two DiT calls) is timed for about this long instead, at least
# MIN_TIMED_REPLAYS times: 13 replays of it took the 2026-12-03 H200 run past its time limit.
TIMED_S, MIN_TIMED_REPLAYS = 30.0, 3
# The memory-bound pass: an elementwise multiply over buffers of this size (read + write 2 bytes each).
PASS_MIB = 512


@dataclass
class SustainedTiming:
    """The synthetic step's median ms under sustained load, and the GPU's state while it was timed."""

    ms: float
    heat_s: float
    replays: int
    gpu: dict = field(default_factory=dict)
    samples_ms: list[float] = field(default_factory=list)


def memory_pass(nbytes: int, device: torch.device, dtype: torch.dtype = torch.bfloat16) -> Callable[[], None]:
    """Elementwise passes (read one bf16 buffer, write another) moving `nbytes` in all, the fused estimate of the
    step's memory-bound traffic; a kernel on the SMs as the step's own, not a copy-engine memcpy."""
    itemsize = torch.tensor([], dtype=dtype).element_size()
    per_element = 2 * itemsize  # read + write
    chunk = max(1, PASS_MIB * 2**20 // itemsize)
    total = nbytes // per_element
    src = torch.randn(min(chunk, max(total, 1)), device=device, dtype=torch.float32).to(dtype)
    dst = torch.empty_like(src)
    sizes = [chunk] * (total // chunk) + ([total % chunk] if total % chunk else [])

    def run() -> None:
        for n in sizes:
            torch.mul(src[:n], 1.0, out=dst[:n])

    return run


def synthetic_step(
    counts: ForwardCounts,
    device: torch.device,
    attention_backend: Optional[str] = None,
    dtype: Optional[torch.dtype] = None,
    max_sets: int = 4,
) -> Callable[[], None]:
    """One call runs every counted shape as many times as the step did (cycling through a few input sets
    larger than L2 together, as the step's own weights are), then the memory-bound pass."""
    plan = [
        (shape_calls(shape, device, attention_backend, dtype, max_sets)[0], count)
        for shape, count in counts.shapes.items()
    ]
    memory = memory_pass(counts.memory_bytes, device) if counts.memory_bytes else None

    def step() -> None:
        for calls, count in plan:
            for i in range(count):
                calls[i % len(calls)]()
        if memory is not None:
            memory()

    return step


def measure_sustained(
    counts: ForwardCounts,
    device: torch.device,
    attention_backend: Optional[str] = None,
    dtype: Optional[torch.dtype] = None,
    heat_s: float = HEAT_S,
    replays: int = TIMED_REPLAYS,
) -> SustainedTiming:
    """The synthetic step captured as a CUDA graph, replayed for `heat_s` s, then `replays` replays timed."""
    from diffexp.bench.transformer_ab import gpu_sampler, sampler_summary

    if device.type != "cuda":
        raise ValueError(f"the sustained floor is a GPU's (its power cap): not measured on {device}")
    with torch.cuda.device(device):
        step = synthetic_step(counts, device, attention_backend, dtype)
        step()  # warm-up: library heuristics, allocator growth
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        begin, heated = time.perf_counter(), 0
        heat = 0.0  # at least heat_s of load, and MIN_HEAT_REPLAYS replays unless each one is that long alone
        while heat < heat_s or (heated < MIN_HEAT_REPLAYS and heat < heat_s * heated):
            graph.replay()
            torch.cuda.synchronize()
            heated += 1
            heat = time.perf_counter() - begin
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        samples = []
        with tempfile.TemporaryDirectory() as tmp:
            smi = Path(tmp) / "smi.csv"
            with gpu_sampler(smi):
                for _ in range(replays):
                    start.record()
                    graph.replay()
                    end.record()
                    end.synchronize()
                    samples.append(start.elapsed_time(end))
                    if len(samples) >= MIN_TIMED_REPLAYS and sum(samples) > 1000 * TIMED_S:
                        break
            gpu = sampler_summary(smi)
        del graph, step
        torch.cuda.empty_cache()
    ms = statistics.median(samples)
    log.info("sustained floor %.4g ms (%d replays after %.1f s of load; %s)", ms, len(samples), heat, gpu)
    return SustainedTiming(ms, heat, len(samples), gpu, samples)
