"""The compute floor of one denoise step: counted work × the device's measured speed at those shapes.

floor_ms = Σ_shape calls × measured ms per call (GEMMs, convolutions, attention)
         + memory-bound bytes (fused estimate) / copy bandwidth

timed shape by shape in short bursts, at the clocks a GPU boosts to; on a GPU also the sustained floor, the same
work replayed as one synthetic step under load at the clocks its power cap leaves (diffexp.floor.sustained).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Optional

import torch

from diffexp.floor.count import ForwardCounts, count_forward
from diffexp.floor.shapes import ATTENTION, CATEGORIES, GEMM, MEMORY, Shape, shape_from_dict, shape_to_dict
from diffexp.floor.sustained import SustainedTiming, measure_sustained
from diffexp.floor.timing import MEASURABLE, DeviceTimings, measure

PREFIX = "floor."


@dataclass
class ShapeCost:
    shape: Shape
    count: int
    ms_each: Optional[float]

    @property
    def total_ms(self) -> Optional[float]:
        return None if self.ms_each is None else self.count * self.ms_each

    @property
    def tflops(self) -> Optional[float]:
        """The rate the device reached at this shape, TFLOP/s."""
        return None if not self.ms_each else self.shape.flops / (self.ms_each * 1e-3) / 1e12


@dataclass
class Floor:
    """Counts of one denoise step (every denoiser call in it) and, where measured, the floor in ms."""

    counts: ForwardCounts
    timings: Optional[DeviceTimings] = None
    # The run's measured step time, for efficiency = floor / step.
    step_ms: Optional[float] = None
    # On a GPU: the same work as one synthetic step under sustained load (diffexp.floor.sustained).
    sustained: Optional[SustainedTiming] = None

    @property
    def measured(self) -> bool:
        return self.timings is not None

    def costs(self) -> list[ShapeCost]:
        """Every shape with its count and time, the largest total first (by FLOPs when not measured)."""
        ms = self.timings.shape_ms if self.timings else {}
        rows = [ShapeCost(shape, n, ms.get(shape)) for shape, n in self.counts.shapes.items()]
        return sorted(rows, key=lambda r: (-(r.total_ms or 0.0), -r.shape.flops * r.count))

    def work(self, category: str) -> float:
        """FLOPs of a compute category; bytes for the memory-bound one."""
        return float(self.counts.memory_bytes if category == MEMORY else self.counts.flops(category))

    def category_ms(self, category: str) -> Optional[float]:
        if self.timings is None:
            return None
        if category == MEMORY:
            return self.counts.memory_bytes / (self.timings.copy_gbps * 1e9) * 1e3
        return sum(c.total_ms or 0.0 for c in self.costs() if c.shape.category == category)

    @property
    def floor_ms(self) -> Optional[float]:
        if self.timings is None:
            return None
        return sum(self.category_ms(c) or 0.0 for c in CATEGORIES)

    @property
    def efficiency(self) -> Optional[float]:
        """floor ÷ measured step time: 1.0 means the step runs at the device's speed at its own shapes."""
        if self.floor_ms is None or not self.step_ms:
            return None
        return self.floor_ms / self.step_ms

    @property
    def sustained_efficiency(self) -> Optional[float]:
        """sustained floor ÷ step: the step against the same work at the clocks that work can keep."""
        if self.sustained is None or not self.step_ms:
            return None
        return self.sustained.ms / self.step_ms

    def metrics(self) -> dict[str, float]:
        """Flat `floor.*` metrics for MLflow; absent figures are left out."""
        c = self.counts
        out: dict[str, Optional[float]] = {
            "gemm_tflop": c.flops(GEMM) / 1e12,
            "attention_tflop": c.flops(ATTENTION) / 1e12,
            "memory_gb": c.memory_bytes / 1e9,
            "memory_gb_eager": c.memory_bytes_eager / 1e9,
            "gemm_shapes": float(len(c.of(GEMM))),
            "attention_shapes": float(len(c.of(ATTENTION))),
            "gemm_calls": float(sum(c.of(GEMM).values())),
            "attention_calls": float(sum(c.of(ATTENTION).values())),
            "transformer_calls": float(c.forwards),
        }
        if self.timings is not None:
            out.update(
                {
                    "ms": self.floor_ms,
                    "gemm_ms": self.category_ms(GEMM),
                    "attention_ms": self.category_ms(ATTENTION),
                    "memory_ms": self.category_ms(MEMORY),
                    "copy_gbps": self.timings.copy_gbps,
                }
            )
        if self.sustained is not None:
            out["sustained_ms"] = self.sustained.ms
            out["sustained_sm_mhz"] = self.sustained.gpu.get("sm_mhz_mean")
            out["sustained_power_w"] = self.sustained.gpu.get("power_w_mean")
        if self.timings is not None and self.timings.gpu:
            out["burst_sm_mhz"] = self.timings.gpu.get("sm_mhz_mean")
        if self.step_ms:
            out["step_ms"] = self.step_ms
            out["efficiency"] = self.efficiency
            out["efficiency_sustained"] = self.sustained_efficiency
        return {PREFIX + k: float(v) for k, v in out.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        t = self.timings
        return {
            "floor_ms": self.floor_ms,
            "step_ms": self.step_ms,
            "efficiency": self.efficiency,
            "categories": {
                cat: {"work": self.work(cat), "unit": "bytes" if cat == MEMORY else "flop", "ms": self.category_ms(cat)}
                for cat in CATEGORIES
            },
            "memory_bytes": self.counts.memory_bytes,
            "memory_bytes_eager": self.counts.memory_bytes_eager,
            "memory_ops": self.counts.memory_ops,
            "transformer_calls": self.counts.forwards,
            "uncounted_ops": dict(self.counts.uncounted_ops),
            "device": None
            if t is None
            else {
                "name": t.device,
                "copy_gbps": t.copy_gbps,
                "attention_timed_as": t.attention_backend,
                "gpu": t.gpu,
                "host": t.host,
            },
            "sustained": None if self.sustained is None else asdict(self.sustained),
            "shapes": [{**shape_to_dict(c.shape), "count": c.count, "ms_each": c.ms_each} for c in self.costs()],
            "metrics": self.metrics(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Floor:
        """A floor.json back (its timings included)."""
        shapes = {
            shape_from_dict({k: v for k, v in s.items() if k not in ("count", "ms_each")}): s for s in data["shapes"]
        }
        counts = ForwardCounts(
            shapes=Counter({shape: s["count"] for shape, s in shapes.items()}),
            memory_bytes=data["memory_bytes"],
            memory_bytes_eager=data["memory_bytes_eager"],
            memory_ops=data["memory_ops"],
            forwards=data["transformer_calls"],
            uncounted_ops=Counter(data.get("uncounted_ops", {})),
        )
        device = data.get("device")
        timings = None
        if device is not None:
            timings = DeviceTimings(
                {shape: s["ms_each"] for shape, s in shapes.items()},
                device["copy_gbps"],
                device["name"],
                device["attention_timed_as"],
                device.get("gpu", {}),
                device.get("host", {}),
            )
        sustained = data.get("sustained")  # absent from floors recorded before it was measured
        return cls(counts, timings, data.get("step_ms"), SustainedTiming(**sustained) if sustained else None)


def measure_floor(
    counts: ForwardCounts,
    device: torch.device,
    attention_backend: Optional[str] = None,
    dtype: Optional[torch.dtype] = None,
    step_ms: Optional[float] = None,
) -> Floor:
    """The floor of counted work: measured on a CUDA device or the CPU, counts only on the meta device; on a
    CUDA device also under sustained load."""
    timings = measure(counts.shapes, device, attention_backend, dtype) if device.type in MEASURABLE else None
    sustained = measure_sustained(counts, device, attention_backend, dtype) if device.type == "cuda" else None
    return Floor(counts, timings, step_ms, sustained)


def floor_for(
    transformer: torch.nn.Module,
    call_args: tuple,
    call_kwargs: dict[str, Any],
    device: torch.device,
    dtype: Optional[torch.dtype] = None,
    attention_backend: Optional[str] = None,
    calls_per_step: int = 1,
) -> Floor:
    """The floor of one denoise step from one transformer call's inputs, for an engine to add to any run.

    Counts the call on the module as it is (one eager forward, hooks not called), then measures on `device`.
    `calls_per_step`: a pipeline that calls the transformer twice a step with the same shapes (CFG without
    batching) passes 2. `dtype` times every shape in that dtype instead of the one it ran in.
    """
    counts = count_forward(transformer, call_args, call_kwargs)
    total = ForwardCounts()
    for _ in range(calls_per_step):
        total = total + counts
    return measure_floor(total, device, attention_backend, dtype)
