"""Perf dumps as compare reads them: the engine's one reader (engines/sglang/perf_dump.py), and which rows are the
denoise loop (its stages, and the older dumps' summed "Denoising Loop" row)."""

from __future__ import annotations

from diffexp.engines.sglang import perf_dump as _dump
from diffexp.engines.sglang.perf_dump import DENOISING_LOOP, PerfDump, read_perf_dump

__all__ = ["DENOISING_LOOP", "PerfDump", "is_denoise_stage", "read_perf_dump"]


def is_denoise_stage(name: str) -> bool:
    """A row of the denoise loop: the engine's denoise stages, and the summed per-step row."""
    return name == DENOISING_LOOP or _dump.is_denoise_stage(name)
