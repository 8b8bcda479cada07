"""What work a side did (steps, size, frames, guidance, model), so that compare refuses to time different work.

A perf dump says what it can: its step count (per-step entries) and its `meta` (0.5.23 writes prompt and
model; sampling fields are read when a version adds them). An MLflow run says it through its params.
Only fields both sides know are compared.
"""

from __future__ import annotations

from typing import Optional

from diffexp.compare.perf_dump import PerfDump
from diffexp.tracking.records import RecordedRun

# Field → the run param that holds it; a dump's meta uses the field names (num_inference_steps read as steps).
RUN_PARAMS = {
    "steps": "model.sampling.num_inference_steps",
    "width": "model.sampling.width",
    "height": "model.sampling.height",
    "resolution": "model.sampling.resolution",
    "num_frames": "model.sampling.num_frames",
    "guidance_scale": "model.sampling.guidance_scale",
    "model": "model.path",
}
_META_ALIASES = {"num_inference_steps": "steps", "model_path": "model"}


def _clean(value) -> Optional[str]:
    if value is None or str(value) in ("None", "null", ""):
        return None
    try:
        number = float(value)
        return str(int(number)) if number.is_integer() else str(number)
    except (TypeError, ValueError):
        return str(value)


def of_dump(dump: PerfDump) -> dict[str, str]:
    work = {"steps": _clean(dump.step_count)}
    for key, value in dump.meta.items():
        field = _META_ALIASES.get(key, key)
        if field in RUN_PARAMS:
            work[field] = _clean(value)
    return {k: v for k, v in work.items() if v is not None}


def of_run(run: RecordedRun) -> dict[str, str]:
    work = {field: _clean(run.params.get(param)) for field, param in RUN_PARAMS.items()}
    if work["steps"] is None and run.result.denoise_step_ms:
        work["steps"] = str(len(run.result.denoise_step_ms))
    return {k: v for k, v in work.items() if v is not None}


def differences(base: dict[str, str], cand: dict[str, str]) -> list[str]:
    """`field: base → candidate` for each field both sides know and that differs."""
    return [f"{k}: {base[k]} → {cand[k]}" for k in RUN_PARAMS if k in base and k in cand and base[k] != cand[k]]
