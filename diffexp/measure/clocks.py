"""Device-synchronised clocks and peak-memory readings for the in-process engine."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Optional

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class StageClock:
    """Accumulates synchronised wall time per named stage (a stage may run several times)."""

    device: torch.device
    totals_s: dict[str, float] = field(default_factory=dict)
    # Parallel runs: wait for every rank before reading the clock, so a reading covers all ranks.
    barrier: Optional[Callable[[], None]] = None

    def now(self) -> float:
        synchronize(self.device)
        if self.barrier is not None:
            self.barrier()
            synchronize(self.device)
        return time.perf_counter()

    @contextmanager
    def stage(self, name: str):
        start = self.now()
        try:
            yield
        finally:
            self.totals_s[name] = self.totals_s.get(name, 0.0) + self.now() - start


@dataclass
class StepClock:
    """Denoise-step times from the first transformer call of each step to the step-end callback."""

    clock: StageClock
    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)

    def on_transformer_call(self, *_args, **_kwargs) -> bool:
        """Returns True when this call opened a new step."""
        # CFG models call the transformer twice per step: only the first call opens the step.
        if len(self.starts) == len(self.ends):
            self.starts.append(self.clock.now())
            return True
        return False

    def on_step_end(self, pipe, step, timestep, callback_kwargs):
        self.ends.append(self.clock.now())
        return {}

    @property
    def step_ms(self) -> list[float]:
        return [(e - s) * 1e3 for s, e in zip(self.starts, self.ends)]

    @property
    def denoise_s(self) -> float | None:
        return self.ends[-1] - self.starts[0] if self.ends else None


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        for index in range(torch.cuda.device_count()):
            torch.cuda.reset_peak_memory_stats(index)


def peak_memory_gib(device: torch.device) -> dict[str, float]:
    """Peak allocated memory per CUDA device, or the process's peak RSS on CPU."""
    if device.type == "cuda":
        return {
            f"cuda:{i}": torch.cuda.max_memory_allocated(i) / 2**30
            for i in range(torch.cuda.device_count())
            if torch.cuda.max_memory_allocated(i) > 0
        }
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return {"cpu": rss / (2**30 if sys.platform == "darwin" else 2**20)}
