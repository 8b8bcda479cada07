"""SGLang perf dumps (`--perf-dump-path`, sglang 0.5.23 PerformanceLogger.dump_benchmark_report) as stage figures.

Stages are read the way SGLang's own benchmarks/compare_perf.py reads them, so that both agree on
the same files: `steps` in file order, `denoising_step_<i>` entries (older dumps) summed into one
"Denoising Loop" row, a stage repeated in the file summed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from diffexp.engines.sglang import harvest
from diffexp.engines.sglang.perf_dump import load_perf_dump_json

DENOISING_LOOP = "Denoising Loop"
_DENOISE_STEP = re.compile(r"^denoising_step_(\d+)$")


@dataclass
class PerfDump:
    path: Path
    total_duration_ms: float
    # Stage name → summed duration (ms), in the order compare_perf shows them.
    stages_ms: dict[str, float]
    # How many entries each stage row sums (the step count of "Denoising Loop").
    counts: dict[str, int]
    denoise_steps_ms: list[float] = field(default_factory=list)
    # Max over the memory checkpoints (MiB, as SGLang records it).
    peak_reserved_mb: Optional[float] = None
    # The dump's `meta` (0.5.23: prompt, model; later versions may add sampling fields).
    meta: dict = field(default_factory=dict)

    @property
    def step_count(self) -> Optional[int]:
        """Denoise steps the request ran: per-step entries, or the older dumps' denoising_step_<i> stages."""
        if self.denoise_steps_ms:
            return len(self.denoise_steps_ms)
        return self.counts.get(DENOISING_LOOP)

    @property
    def denoise_ms(self) -> Optional[float]:
        """The guide's denoise latency: the denoise/refinement stages, else the per-step sum."""
        total = sum(v for k, v in self.stages_ms.items() if is_denoise_stage(k))
        if total > 0:
            return total
        return sum(self.denoise_steps_ms) if self.denoise_steps_ms else None


def is_denoise_stage(name: str) -> bool:
    """The engine's denoise stages (DenoisingStage, LTX2RefinementStage, …), and the summed per-step row."""
    return name == DENOISING_LOOP or harvest.is_denoise_stage(name)


def consolidate(steps: list[dict]) -> tuple[dict[str, float], dict[str, int]]:
    """Stage rows from a validated dump's `steps`."""
    durations: dict[str, float] = {}
    counts: dict[str, int] = {}
    for step in steps:
        name = step.get("name", "unknown")
        key = DENOISING_LOOP if _DENOISE_STEP.match(name) else name
        durations[key] = durations.get(key, 0.0) + float(step["duration_ms"])
        counts[key] = counts.get(key, 0) + 1
    return durations, counts


def read_perf_dump(path: Path | str) -> PerfDump:
    """The dump, or a DiffexpError (exit status 2) naming what makes it unusable (see validate_perf_dump)."""
    path = Path(path)
    data = load_perf_dump_json(path)
    stages, counts = consolidate(data["steps"])
    total = float(data["total_duration_ms"])
    steps_ms = [float(s["duration_ms"] if isinstance(s, dict) else s) for s in data.get("denoise_steps_ms") or []]
    peaks = [s.get("peak_reserved_mb") for s in (data.get("memory_checkpoints") or {}).values()]
    return PerfDump(
        path=path,
        total_duration_ms=total,
        stages_ms=stages,
        counts=counts,
        denoise_steps_ms=steps_ms,
        peak_reserved_mb=max((float(p) for p in peaks if p), default=None),
        meta=data.get("meta") if isinstance(data.get("meta"), dict) else {},
    )
