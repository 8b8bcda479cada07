"""SGLang's perf dump (`sglang generate --perf-dump-path`, 0.5.23's PerformanceLogger.dump_benchmark_report): the one
schema rule for what a usable dump is, owned with the engine that writes it, and used by the engine's harvest,
compare and ingest alike."""

from __future__ import annotations

import json
import math
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
