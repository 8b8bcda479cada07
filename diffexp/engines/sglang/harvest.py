"""Turn what `sglang generate` left behind (perf dump, console log) into a RunResult.

The dump is read by engines/sglang/perf_dump.py (the one reader, shared with compare and ingest). Denoise latency
follows SGLang's own benchmark skill: the sum of stages ending in DenoisingStage or RefinementStage (not
BeforeDenoisingStage), else the sum of per-step times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from diffexp.engines.sglang import resolved
from diffexp.engines.sglang.perf_dump import DENOISING_LOOP, PerfDump, is_denoise_stage
from diffexp.results import RunResult

FALLBACK_MARKERS = ("Falling back to diffusers backend", "Using diffusers backend", "Loaded diffusers pipeline")
# A warmup request that ran: its progress bar (or, under CI logging, its log line), server_warmup.py.
WARMUP_RAN_MARKER = "Warmup requests"
# The guide's wording, and the 0.5.23 source's (gpu_worker.do_mem_analysis, logged at debug level).
RESIDENCY_MARKERS = ("Components that could stay resident", "Components that can remain on GPU")
OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError", "out of memory", "DefaultCPUAllocator: can't allocate memory")
# 0.5.23's CLI logs these and still exits 0 when a request fails (diffusion_generator / logging_utils).
FAILURE_MARKERS = ("Generation failed:", "Failed to generate output")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NUM = r"([0-9]+(?:\.[0-9]+)?)"
_STAGE = re.compile(r"\[([A-Za-z0-9_]+)\] finished in " + _NUM + " seconds")
_WARMED = re.compile(r"processed in " + _NUM + r" seconds \(with warmup excluded\)")
_WARMUP_FAILED = re.compile(r"Warmup failed, so this request ran cold: " + _NUM + " seconds")
_GENERATED = re.compile(r"Pixel data generated successfully in " + _NUM + " seconds")
_MEM_PEAK = re.compile(r"Memory usage - Max peak: " + _NUM + " MB")
_SAVED = re.compile(r"Output saved to (\S+)")
_TRACE = re.compile(r"Saved profiler traces to: (\S+)")


@dataclass
class LogFigures:
    stages_s: dict[str, float] = field(default_factory=dict)
    warmup_excluded_s: Optional[float] = None
    warmup_failed: bool = False
    generated_s: Optional[float] = None
    max_peak_mem_mb: Optional[float] = None
    fallback_lines: list[str] = field(default_factory=list)
    residency_lines: list[str] = field(default_factory=list)
    oom_lines: list[str] = field(default_factory=list)
    failure_lines: list[str] = field(default_factory=list)
    saved_outputs: list[str] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)
    # The settled ServerArgs (the `server_args: {…}` line), and the lines where SGLang changed a setting itself.
    server_args: Optional[dict] = None
    tuning_lines: list[str] = field(default_factory=list)
    # A warmup request ran (not merely the "(with warmup excluded)" wording, which warmup_mode=server also prints).
    warmup_ran: bool = False


def parse_log(text: str) -> LogFigures:
    figures = LogFigures()
    for raw in text.splitlines():
        line = _ANSI.sub("", raw)
        if m := _STAGE.search(line):
            figures.stages_s[m.group(1)] = float(m.group(2))  # the last (non-warmup) request wins
        if m := _WARMED.search(line):
            figures.warmup_excluded_s = float(m.group(1))
        if m := _WARMUP_FAILED.search(line):
            figures.warmup_failed = True
        if m := _GENERATED.search(line):
            figures.generated_s = float(m.group(1))
        if m := _MEM_PEAK.search(line):
            figures.max_peak_mem_mb = float(m.group(1))
        if m := _SAVED.search(line):
            figures.saved_outputs.append(m.group(1))
        if m := _TRACE.search(line):
            figures.traces.append(m.group(1))
        if (args := resolved.server_args(line)) is not None:
            figures.server_args = args
        if any(marker in line for marker in resolved.TUNING_MARKERS):
            figures.tuning_lines.append(line.strip())
        if WARMUP_RAN_MARKER in line:
            figures.warmup_ran = True
        if any(marker in line for marker in FALLBACK_MARKERS):
            figures.fallback_lines.append(line.strip())
        if any(marker in line for marker in RESIDENCY_MARKERS):
            figures.residency_lines.append(line.strip())
        if any(marker in line for marker in OOM_MARKERS):
            figures.oom_lines.append(line.strip())
        if any(marker in line for marker in FAILURE_MARKERS):
            figures.failure_lines.append(line.strip())
    return figures


def _sum(values) -> Optional[float]:
    values = list(values)
    return sum(values) if values else None


def denoise_seconds(stages_s: dict[str, float], steps_ms: list[float]) -> Optional[float]:
    total = _sum(v for k, v in stages_s.items() if is_denoise_stage(k))
    if total:
        return total
    return sum(steps_ms) / 1000.0 if steps_ms else None


def text_encode_seconds(stages_s: dict[str, float]) -> Optional[float]:
    return _sum(v for k, v in stages_s.items() if "TextEncod" in k)


def vae_decode_seconds(stages_s: dict[str, float]) -> Optional[float]:
    return _sum(v for k, v in stages_s.items() if k.endswith("DecodingStage") and "Denois" not in k)


def residency_advice(lines: list[str]) -> Optional[str]:
    """The component list after the marker, e.g. "['text_encoder', 'vae']"."""
    for line in reversed(lines):
        for marker in RESIDENCY_MARKERS:
            if marker in line:
                rest = line.split(marker, 1)[1].lstrip(": ")
                return rest.split("]", 1)[0] + "]" if "[" in rest else rest
    return None


def warmed_up(log: LogFigures) -> bool:
    """A warmup request ran and the measured request was the warm one. The "(with warmup excluded)" line
    alone does not say so: 0.5.23 prints it for any warmup_mode but off, also for `server`, which
    `sglang generate` never runs."""
    return log.warmup_ran and log.warmup_excluded_s is not None and not log.warmup_failed


# The perf dump's memory checkpoints (gpu_worker.py): runtime_peak is the allocator's peak over the measured
# requests (peak stats reset before each forward, max over the replica's ranks); after_forward the same for
# the one request; load_peak the loading's.
RUNTIME_PEAK_CHECKPOINTS = ("runtime_peak", "after_forward")
MEMORY_FIELDS = ("allocated_mb", "reserved_mb", "peak_allocated_mb", "peak_reserved_mb", "peak_host_anon_mb")


def memory_metrics(memory_mb: dict[str, dict[str, float]]) -> dict[str, float]:
    """Every checkpoint's figures as `mem.<checkpoint>.<field>_gib`, and the measured requests' peaks as
    `mem.peak_allocated_gib` / `mem.peak_reserved_gib` (zeros, as CPU dumps carry, are left out)."""
    out = {}
    for checkpoint, snap in memory_mb.items():
        for name in MEMORY_FIELDS:
            if snap.get(name):
                out[f"mem.{checkpoint}.{name[:-3]}_gib"] = snap[name] / 1024.0
    for name in ("peak_allocated_mb", "peak_reserved_mb"):
        found = next((memory_mb[c][name] for c in RUNTIME_PEAK_CHECKPOINTS if memory_mb.get(c, {}).get(name)), None)
        if found:
            out[f"mem.{name[:-3]}_gib"] = found / 1024.0
    return out


def _close(a: float, b: float) -> bool:
    # The log's figure spans a little more than the dump's (request handling, saving): 2 % or 10 ms.
    return abs(a - b) <= max(0.02 * max(abs(a), abs(b)), 0.010)


def build_result(
    dump: Optional[PerfDump], log: LogFigures, *, diffusers_baseline: bool = False, profiled: bool = False
) -> RunResult:
    """Dump figures first; log figures as the cross-check, or as the figures when no dump exists."""
    result = RunResult(profiled=profiled)
    if dump is not None:
        # The older dumps' per-step rows are the step series, not a stage of their own.
        result.stages_s = {k: ms / 1000.0 for k, ms in dump.stages_ms.items() if k != DENOISING_LOOP}
        result.denoise_step_ms = list(dump.denoise_steps_ms)
        result.e2e_s = dump.total_duration_ms / 1000.0 if dump.total_duration_ms is not None else None
        result.extra_metrics.update(memory_metrics(dump.memory_mb))
        if "mem.peak_allocated_gib" in result.extra_metrics:
            result.peak_mem_gib = result.extra_metrics["mem.peak_allocated_gib"]
            # runtime_peak is already the max over the replica's ranks; SGLang keeps no per-rank figure.
        if dump.commit_hash:
            result.tags["sglang.commit"] = dump.commit_hash
    else:
        result.stages_s = dict(log.stages_s)
        result.e2e_s = log.warmup_excluded_s if log.warmup_excluded_s is not None else log.generated_s
        result.tags["figures_from"] = "log"
    if log.max_peak_mem_mb:
        # The server's "Max peak" is the allocator's peak *reserved*: logged beside peak_mem_gib, never as it.
        result.extra_metrics["mem.server_peak_reserved_gib"] = log.max_peak_mem_mb / 1024.0
    result.denoise_s = denoise_seconds(result.stages_s, result.denoise_step_ms)
    result.text_encode_s = text_encode_seconds(result.stages_s)
    result.vae_decode_s = vae_decode_seconds(result.stages_s)
    if result.denoise_step_ms:
        result.extra_metrics["denoise_steps_sum_s"] = sum(result.denoise_step_ms) / 1000.0
    _cross_check(result, dump, log)
    result.warmup_excluded = warmed_up(log)
    if log.warmup_failed:
        result.tags["warmup_failed"] = "true"
    advice = residency_advice(log.residency_lines)
    if advice:
        result.tags["resident_components"] = advice[:250]
    _gate(result, log, diffusers_baseline)
    if result.valid and result.denoise_s is None and result.e2e_s is None:
        result.valid, result.invalid_reason = False, "no timing figures: no perf dump and no timing lines in the log"
    return result


def _cross_check(result: RunResult, dump: Optional[PerfDump], log: LogFigures) -> None:
    log_denoise = denoise_seconds(log.stages_s, [])
    for name, value in (
        ("log.warmup_excluded_s", log.warmup_excluded_s),
        ("log.generated_s", log.generated_s),
        ("log.denoise_s", log_denoise),
    ):
        if value is not None:
            result.extra_metrics[name] = value
    if dump is None:
        return
    pairs = [("denoise", result.denoise_s, log_denoise)]
    if log.warmup_excluded_s is not None:
        pairs.append(("e2e", result.e2e_s, log.warmup_excluded_s))
    mismatches = [
        f"{n}: dump {d:.4f}s vs log {lg:.4f}s"
        for n, d, lg in pairs
        if d is not None and lg is not None and not _close(d, lg)
    ]
    if any(d is not None and lg is not None for _, d, lg in pairs):
        result.tags["log_crosscheck"] = "mismatch: " + "; ".join(mismatches) if mismatches else "ok"


def _gate(result: RunResult, log: LogFigures, diffusers_baseline: bool) -> None:
    """The native-backend gate: a run that fell back to diffusers is not an SGLang number."""
    if diffusers_baseline:
        result.tags["backend"] = "diffusers-baseline"
    elif log.fallback_lines:
        result.tags["backend"] = "diffusers-fallback"
        result.tags["backend_fallback"] = "true"
        result.valid = False
        result.invalid_reason = f"SGLang fell back to the diffusers backend: {log.fallback_lines[0][:300]}"
    else:
        result.tags["backend"] = "sglang"
