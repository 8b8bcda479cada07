"""SGLang's perf dump (`sglang generate --perf-dump-path`, 0.5.23's PerformanceLogger.dump_benchmark_report): the one
schema rule for what a usable dump is and the one reader of its figures, owned with the engine that writes it, and
used by the engine's harvest, compare and ingest alike.

The schema (runtime/utils/perf_logger.py): total_duration_ms, steps = [{name, duration_ms}] (one per pipeline stage),
denoise_steps_ms = [{step, duration_ms}], memory_checkpoints = {name: {allocated_mb, reserved_mb, peak_allocated_mb,
peak_reserved_mb, peak_host_anon_mb}}, meta = {prompt, model}, plus timestamp, request_id, commit_hash, tag. Older
dumps list per-step timings among the stages as `denoising_step_<i>`; they are read the way SGLang's own
benchmarks/compare_perf.py reads them, summed into one "Denoising Loop" row, so both tools agree on the same files.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from diffexp.errors import DiffexpError

# Longer than any real request (115 days): a figure above it is a corrupt or mis-scaled file, not a timing.
MAX_DURATION_MS = 1e10


def _duration_problem(value, where: str) -> Optional[str]:
    """None for a duration anything downstream can use: a finite number of ms above 0 and below the absurd."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{where} is {value!r}, not a duration in ms"
    if not math.isfinite(value) or value <= 0 or value > MAX_DURATION_MS:
        return f"{where} is {value!r} ms (must be a finite duration above 0 and at most {MAX_DURATION_MS:.0e} ms)"
    return None


def _optional_text(data: dict, key: str, where: str = "") -> list[str]:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return []
    return [f"{where}{key} is {value!r}, not text"]


def validate_perf_dump(data) -> list[str]:
    """Every way the parsed JSON is not a usable SGLang 0.5.23 perf dump, one problem per field (the one
    schema rule: compare and ingest both refuse a dump for which this is not empty)."""
    if not isinstance(data, dict) or "steps" not in data:
        return ["not an SGLang perf dump (no `steps`; written by `sglang generate --perf-dump-path`)"]
    out: list[str] = []
    steps = data["steps"]
    if not isinstance(steps, list) or not steps:
        out.append(f"`steps` is {steps!r}: the dump records no stage")
        steps = []
    for step in steps:
        if not isinstance(step, dict) or not isinstance(step.get("name", ""), str):
            out.append(f"a `steps` entry is {step!r}, not {{name, duration_ms}}")
            continue
        name = step.get("name", "unknown")
        out += filter(None, [_duration_problem(step.get("duration_ms"), f"stage {name!r} duration_ms")])
    out += filter(None, [_duration_problem(data.get("total_duration_ms"), "total_duration_ms")])
    per_step = data.get("denoise_steps_ms")
    if per_step is not None and not isinstance(per_step, list):
        out.append(f"denoise_steps_ms is {per_step!r}, not a list of {{step, duration_ms}}")
        per_step = []
    for i, step in enumerate(per_step or []):
        if isinstance(step, dict) and not isinstance(step.get("step", i), int):
            out.append(f"denoise step {i} step is {step.get('step')!r}, not a step number")
        value = step.get("duration_ms") if isinstance(step, dict) else step
        out += filter(None, [_duration_problem(value, f"denoise step {i} duration_ms")])
    memory = data.get("memory_checkpoints")
    if memory is not None and not isinstance(memory, dict):
        out.append(f"memory_checkpoints is {memory!r}, not {{name: {{field: MiB}}}}")
        memory = {}
    for name, snap in (memory or {}).items():
        if not isinstance(snap, dict):
            out.append(f"memory_checkpoints.{name} is {snap!r}, not {{field: MiB}}")
            continue
        for key, value in snap.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                out.append(f"memory_checkpoints.{name}.{key} is {value!r}, not a size in MiB")
            elif not math.isfinite(value) or value < 0 or value > 2**40:
                out.append(f"memory_checkpoints.{name}.{key} is {value!r} MiB (must be finite, >= 0 and plausible)")
    meta = data.get("meta")
    if meta is not None and not isinstance(meta, dict):
        out.append(f"meta is {meta!r}, not an object")
    elif meta:
        prompt = meta.get("prompt")
        if (
            prompt is not None
            and not isinstance(prompt, str)
            and not (isinstance(prompt, list) and all(isinstance(p, str) for p in prompt))
        ):
            out.append(f"meta.prompt is {prompt!r}, not text or a list of texts")
        out += _optional_text(meta, "model", "meta.")
    for key in ("request_id", "commit_hash", "tag", "timestamp"):
        out += _optional_text(data, key)
    return out


def load_perf_dump_json(path: Path | str) -> dict:
    """The dump's JSON, checked by validate_perf_dump; a DiffexpError (exit status 2) naming the file and each
    unusable field otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DiffexpError(f"{path}: not a readable perf dump ({exc})") from exc
    problems = validate_perf_dump(data)
    if problems:
        raise DiffexpError(f"{path}: " + "; ".join(problems) + ": the dump cannot be used")
    return data


DENOISING_LOOP = "Denoising Loop"
_LEGACY_STEP = re.compile(r"^denoising_step_(\d+)$")


def is_denoise_stage(name: str) -> bool:
    """A pipeline stage of the denoise loop (DenoisingStage, LTX2RefinementStage, …), not BeforeDenoisingStage."""
    return name.endswith(("DenoisingStage", "RefinementStage")) and "BeforeDenoisingStage" not in name


@dataclass
class PerfDump:
    path: Path
    total_duration_ms: float
    # Stage name → summed duration (ms), in file order; a stage repeated in the file is summed.
    stages_ms: dict[str, float]
    # How many entries each stage row sums (the step count of "Denoising Loop").
    counts: dict[str, int]
    # Per-step times in step order: `denoise_steps_ms`, else the older dumps' `denoising_step_<i>` stages.
    denoise_steps_ms: list[float] = field(default_factory=list)
    # Checkpoint name → {field: MiB}, as SGLang records it.
    memory_mb: dict[str, dict[str, float]] = field(default_factory=dict)
    # The dump's `meta` (0.5.23: prompt, model; later versions may add sampling fields).
    meta: dict = field(default_factory=dict)
    commit_hash: Optional[str] = None
    request_id: Optional[str] = None
    tag: Optional[str] = None

    @property
    def step_count(self) -> Optional[int]:
        """Denoise steps the request ran."""
        return len(self.denoise_steps_ms) or None

    @property
    def denoise_ms(self) -> Optional[float]:
        """The guide's denoise latency: the sum of the denoise/refinement stages, else of the per-step times."""
        total = sum(v for k, v in self.stages_ms.items() if is_denoise_stage(k))
        if total > 0:
            return total
        return sum(self.denoise_steps_ms) if self.denoise_steps_ms else None

    @property
    def peak_reserved_mb(self) -> Optional[float]:
        """The largest peak reserved over the memory checkpoints (MiB)."""
        peaks = [snap.get("peak_reserved_mb") for snap in self.memory_mb.values()]
        return max((p for p in peaks if p), default=None)


def read_perf_dump(path: Path | str) -> PerfDump:
    """The dump's figures, or a DiffexpError (exit status 2) naming what makes it unusable (validate_perf_dump)."""
    path = Path(path)
    data = load_perf_dump_json(path)
    stages: dict[str, float] = {}
    counts: dict[str, int] = {}
    legacy: list[tuple[int, float]] = []
    for step in data["steps"]:
        name, ms = step.get("name", "unknown"), float(step["duration_ms"])
        if found := _LEGACY_STEP.match(name):
            legacy.append((int(found.group(1)), ms))
            name = DENOISING_LOOP
        stages[name] = stages.get(name, 0.0) + ms
        counts[name] = counts.get(name, 0) + 1
    per_step = sorted(
        (s.get("step", i), float(s["duration_ms"])) if isinstance(s, dict) else (i, float(s))
        for i, s in enumerate(data.get("denoise_steps_ms") or [])
    )
    return PerfDump(
        path=path,
        total_duration_ms=float(data["total_duration_ms"]),
        stages_ms=stages,
        counts=counts,
        denoise_steps_ms=[ms for _, ms in per_step or sorted(legacy)],
        memory_mb={
            name: {k: float(v) for k, v in snap.items() if isinstance(v, (int, float))}
            for name, snap in (data.get("memory_checkpoints") or {}).items()
        },
        meta=data.get("meta") or {},
        commit_hash=data.get("commit_hash"),
        request_id=data.get("request_id"),
        tag=data.get("tag"),
    )
