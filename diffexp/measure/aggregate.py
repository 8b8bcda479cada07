"""Repeated trials folded into one RunResult: the measured generations of one process (repeats), and the
results of several fresh processes of the same config (replicates). Headline figures become medians; each one's
spread and 95 % interval go to `RunResult.spread`; the single figures stay in `repeats` / `replicates`."""

from __future__ import annotations

import dataclasses
from statistics import median
from typing import Optional

from diffexp.measure import stats
from diffexp.results import REPEATED_FIGURES, RunResult

# Tag names: how much is known about the noise of a run's figures, and whether it started steady.
TAG_NOISE, TAG_STEADY = "noise", "steady_state"
NOISE_UNKNOWN = "unknown"


def figures_of(result: RunResult) -> dict:
    """One measured generation's figures (a single-shot RunResult) as a repeats entry."""
    return {
        "denoise_s": result.denoise_s,
        "e2e_s": result.e2e_s,
        "text_encode_s": result.text_encode_s,
        "vae_decode_s": result.vae_decode_s,
        "denoise_step_ms": result.denoise_step_median_ms,
        "step_ms": list(result.denoise_step_ms),
        "stages_s": dict(result.stages_s),
    }


def _median_of(values: list) -> Optional[float]:
    values = [v for v in values if v is not None]
    return median(values) if values else None


def _spread(entries: list[dict], seed: int, suffix: str = "") -> dict[str, dict[str, float]]:
    out = {}
    for name in REPEATED_FIGURES:
        values = [e[name] for e in entries if e.get(name) is not None]
        if values:
            s = stats.summarize(values, seed=seed)
            out[name + suffix] = {k: v for k, v in dataclasses.asdict(s).items() if k != "median"}
    return out


def _per_step_median(series: list[list[float]]) -> list[float]:
    if not series:
        return []
    steps = min(len(s) for s in series)
    return [median(s[i] for s in series) for i in range(steps)]


def steady_state(first_steps_ms: list[float], repeat_denoise_s: list[float]) -> tuple[dict[str, float], str]:
    """Slow leading steps of the first measured generation, and slow leading repeats: reported, not hidden.

    Tag: `steady` or `slow_start` (its metrics say how many steps / repeats and by how much)."""
    slow_steps = stats.leading_outliers(first_steps_ms)
    slow_repeats = stats.leading_outliers(repeat_denoise_s)
    metrics = {
        "steady_state.slow_leading_steps": float(slow_steps),
        "steady_state.slow_leading_repeats": float(slow_repeats),
    }
    if len(first_steps_ms) >= 3:
        metrics["steady_state.step0_over_median"] = first_steps_ms[0] / median(first_steps_ms)
    if len(repeat_denoise_s) >= 3:
        metrics["steady_state.repeat0_over_median"] = repeat_denoise_s[0] / median(repeat_denoise_s)
    return metrics, "slow_start" if slow_steps or slow_repeats else "steady"


def fold_repeats(per_repeat: list[RunResult], seed: int = stats.SEED) -> RunResult:
    """N measured generations of one process → one RunResult of medians (outputs, tags, memory of the last)."""
    if not per_repeat:
        raise ValueError("fold_repeats: no repeats")
    entries = [figures_of(r) for r in per_repeat]
    last = per_repeat[-1]
    stage_names = {k for r in per_repeat for k in r.stages_s}
    steady_metrics, steady = steady_state(entries[0]["step_ms"], [e["denoise_s"] for e in entries if e["denoise_s"]])
    folded = dataclasses.replace(
        last,
        denoise_s=_median_of([e["denoise_s"] for e in entries]),
        denoise_step_ms=_per_step_median([e["step_ms"] for e in entries if e["step_ms"]]),
        text_encode_s=_median_of([e["text_encode_s"] for e in entries]),
        vae_decode_s=_median_of([e["vae_decode_s"] for e in entries]),
        e2e_s=_median_of([e["e2e_s"] for e in entries]),
        stages_s={k: _median_of([r.stages_s.get(k) for r in per_repeat]) for k in sorted(stage_names)},
        extra_metrics={**last.extra_metrics, **steady_metrics},
        repeats=entries,
        spread=_spread(entries, seed),
        tags={
            **last.tags,
            TAG_NOISE: f"repeats={len(entries)}" if len(entries) > 1 else NOISE_UNKNOWN,
            TAG_STEADY: steady,
            "measure.repeats": str(len(entries)),
        },
    )
    return folded


def _fold_extra(results: list[RunResult]) -> dict[str, float]:
    """Other figures across replicates: the lowest of a `_min`, the highest of a `_max`, else the median."""
    keys = {k for r in results for k in r.extra_metrics}
    out = {}
    for key in sorted(keys):
        values = [r.extra_metrics[key] for r in results if key in r.extra_metrics]
        out[key] = min(values) if key.endswith("_min") else max(values) if key.endswith("_max") else median(values)
    return out


def _fold_tags(results: list[RunResult]) -> dict[str, str]:
    tags = dict(results[0].tags)
    throttled = [str(i) for i, r in enumerate(results) if r.tags.get("gpu.throttled") == "true"]
    if any("gpu.throttled" in r.tags for r in results):
        tags["gpu.throttled"] = str(bool(throttled)).lower()
        classes = {c for r in results for c in r.tags.get("gpu.throttle", "none").split(",") if c != "none"}
        tags["gpu.throttle"] = ",".join(sorted(classes)) or "none"
        if throttled:
            tags["gpu.throttled_replicates"] = ",".join(throttled)
    steady = [r.tags.get(TAG_STEADY) for r in results]
    if TAG_STEADY in tags:
        tags[TAG_STEADY] = "slow_start" if "slow_start" in steady else "steady"
    return tags


def fold_replicates(results: list[RunResult], seed: int = stats.SEED) -> RunResult:
    """K fresh processes → one RunResult: headline = median of the replicates' headlines; `spread[<metric>]`
    is the between-replicate spread (its interval is the honest one), `spread[<metric>.within]` the pooled repeats'.

    Invalid replicates make the whole result invalid (figures from a broken process are not figures)."""
    if not results:
        raise ValueError("fold_replicates: no replicates")
    invalid = [(i, r.invalid_reason) for i, r in enumerate(results) if not r.valid]
    heads = [{**figures_of(r), "index": i, "repeats": len(r.repeats) or 1} for i, r in enumerate(results)]
    for h in heads:
        h.pop("step_ms")
    pooled = [{**entry, "replicate": i} for i, r in enumerate(results) for entry in (r.repeats or [figures_of(r)])]
    stage_names = {k for r in results for k in r.stages_s}
    peaks = [r.peak_mem_gib for r in results if r.peak_mem_gib is not None]
    first = results[0]
    return dataclasses.replace(
        first,
        denoise_s=_median_of([h["denoise_s"] for h in heads]),
        denoise_step_ms=_per_step_median([r.denoise_step_ms for r in results if r.denoise_step_ms]),
        text_encode_s=_median_of([h["text_encode_s"] for h in heads]),
        vae_decode_s=_median_of([h["vae_decode_s"] for h in heads]),
        e2e_s=_median_of([h["e2e_s"] for h in heads]),
        peak_mem_gib=max(peaks) if peaks else None,
        stages_s={k: _median_of([r.stages_s.get(k) for r in results]) for k in sorted(stage_names)},
        extra_metrics=_fold_extra(results),
        profiled=any(r.profiled for r in results),
        valid=not invalid,
        invalid_reason="; ".join(f"replicate {i}: {why}" for i, why in invalid) or None,
        repeats=pooled,
        replicates=heads,
        spread={**_spread(heads, seed), **_spread(pooled, seed, ".within")},
        tags={
            **_fold_tags(results),
            TAG_NOISE: f"replicates={len(results)}" if len(results) > 1 else first.tags.get(TAG_NOISE, NOISE_UNKNOWN),
            "measure.replicates": str(len(results)),
        },
    )


def sample_of(result: RunResult, name: str = "denoise_s") -> list[float]:
    """The sample a noise-aware verdict compares: replicate headlines when there are several (they carry the
    between-process noise), else the repeats of the one process."""
    values = [r[name] for r in result.replicates if r.get(name) is not None]
    if len(values) > 1:
        return values
    values = [r[name] for r in result.repeats if r.get(name) is not None]
    if values:
        return values
    value = getattr(result, name, None)
    return [value] if value is not None else []
