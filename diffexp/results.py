"""RunResult: the one record of what a run measured and produced, shared by engines, tracking and reports."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median
from typing import Optional

# Figures every measured generation has, kept per repeat and folded into medians.
REPEATED_FIGURES = ("denoise_s", "e2e_s", "text_encode_s", "vae_decode_s", "denoise_step_ms")


def repeat_series(metric: str) -> str:
    """MLflow name of a figure's per-repeat series. denoise_step_ms_series is taken: it is the per-step series."""
    return "denoise_step_ms_repeat_series" if metric == "denoise_step_ms" else f"{metric}_series"


def replicate_series(metric: str) -> str:
    return f"{metric}_replicate_series"


@dataclass
class RunResult:
    # Denoise loop total (the primary metric), warmup excluded.
    denoise_s: Optional[float] = None
    # Per denoise step, in step order.
    denoise_step_ms: list[float] = field(default_factory=list)
    text_encode_s: Optional[float] = None
    vae_decode_s: Optional[float] = None
    e2e_s: Optional[float] = None
    # Max over devices; per-device figures keyed by device label ("cuda:0", "rank1", "cpu").
    peak_mem_gib: Optional[float] = None
    peak_mem_gib_per_device: dict[str, float] = field(default_factory=dict)
    # Every stage the engine reports (SGLang perf dump stages, the in-process engine's stages), in seconds.
    stages_s: dict[str, float] = field(default_factory=dict)
    # Any further figures (e.g. warmup_s, memory figures from a perf dump, profile summaries).
    extra_metrics: dict[str, float] = field(default_factory=dict)
    # Files produced: generated images/videos, and named artifacts (perf dump, log, traces).
    outputs: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # Settings as the engine settled them, when it rewrites the request (SGLang's server_args); logged as
    # `resolved.<key>` params.
    resolved: dict[str, str] = field(default_factory=dict)
    warmup_excluded: bool = False
    # Profiling changes latency: a profiled run's figures are not benchmark numbers.
    profiled: bool = False
    # False when the figures must not be reported (e.g. SGLang fell back to the diffusers backend).
    valid: bool = True
    invalid_reason: Optional[str] = None
    # Repeated trials (diffexp.measure.aggregate): each measured generation's figures, in order (with
    # `replicate` set when they come from several processes), and each replicate process's headline figures.
    # The headline fields above are then medians, and `spread` holds each one's statistics
    # (min, max, mad, ci95_low, ci95_high, n; "<metric>.within" for the pooled repeats of a replicated run).
    repeats: list[dict] = field(default_factory=list)
    replicates: list[dict] = field(default_factory=list)
    spread: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def denoise_step_median_ms(self) -> Optional[float]:
        return median(self.denoise_step_ms) if self.denoise_step_ms else None

    def metrics(self) -> dict[str, float]:
        """Scalar metrics under their MLflow names; absent figures are left out, never zero-filled."""
        named = {
            "denoise_s": self.denoise_s,
            "denoise_step_ms": self.denoise_step_median_ms,
            "text_encode_s": self.text_encode_s,
            "vae_decode_s": self.vae_decode_s,
            "e2e_s": self.e2e_s,
            "peak_mem_gib": self.peak_mem_gib,
        }
        out = {k: float(v) for k, v in named.items() if v is not None}
        if self.denoise_step_ms:  # the steps one measured generation ran: what the per-step figure is over
            out["denoise_steps"] = float(len(self.denoise_step_ms))
        for device, gib in self.peak_mem_gib_per_device.items():
            out[f"peak_mem_gib.{_metric_key(device)}"] = float(gib)
        for stage, seconds in self.stages_s.items():
            out[f"stage_s.{_metric_key(stage)}"] = float(seconds)
        out.update({k: float(v) for k, v in self.extra_metrics.items()})
        for name, stats in self.spread.items():
            out.update({f"{name}.{stat}": float(v) for stat, v in stats.items() if v is not None})
        return {k: v for k, v in out.items() if math.isfinite(v)}

    def series(self) -> dict[str, list[float]]:
        """Per-repeat (`<metric>_series`, one step per measured generation) and per-replicate
        (`<metric>_replicate_series`) figures, for MLflow's step series."""
        out: dict[str, list[float]] = {}
        for name in REPEATED_FIGURES:
            values = [r[name] for r in self.repeats if r.get(name) is not None]
            if values:
                out[repeat_series(name)] = values
            values = [r[name] for r in self.replicates if r.get(name) is not None]
            if values:
                out[replicate_series(name)] = values
        return out

    def to_dict(self) -> dict:
        data = asdict(self)
        data["denoise_step_median_ms"] = self.denoise_step_median_ms
        return data

    def write_json(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        return path

    @classmethod
    def from_dict(cls, data: dict) -> RunResult:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def read_json(cls, path: Path) -> RunResult:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _metric_key(name: str) -> str:
    """MLflow metric names allow alphanumerics, _ - . / and spaces; keep them readable."""
    return "".join(c if c.isalnum() or c in "_-./" else "_" for c in name)
