"""analyze_trace: one torch.profiler trace → a TraceAnalysis (tables + scalars); summary_metrics for MLflow."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from diffexp.errors import DiffexpError
from diffexp.profile import tables
from diffexp.profile.categories import CategoryMap, load_categories
from diffexp.profile.gpu_time import US_PER_MS, device_table
from diffexp.profile.reader import Parser, ProgressCallback, ReadStats, read_trace
from diffexp.profile.scopes import NO_SCOPE, attribute

log = logging.getLogger(__name__)

# Tried in order when no step regex is given; the first that names any scope in the trace defines the steps.
# SGLang and FastVideo-derived code write denoising_step_N / denoise_stepN / Denoising_Step_N;
# torch.profiler's schedule writes ProfilerStep#N.
DEFAULT_STEP_PATTERNS = (r"(?i)^denois(?:e|ing)_?step_?(\d+)$", r"^ProfilerStep#(\d+)$")


@dataclass(frozen=True)
class TraceAnalysis:
    """Everything read from one trace. Tables are pandas DataFrames; times in ms unless a name says otherwise."""

    source: str
    category_map: str
    category_names: tuple[str, ...]  # every category the map can produce, in rule order
    kernels: pd.DataFrame  # tables.KERNEL_COLUMNS, largest total first
    categories: pd.DataFrame  # tables.CATEGORY_COLUMNS
    scopes: pd.DataFrame  # tables.SCOPE_COLUMNS, one row per record_function name
    scope_groups: pd.DataFrame  # the same with numbers folded: transformer_blocks.#.attn, denoise_step_#
    steps: pd.DataFrame  # tables.STEP_COLUMNS, in start order
    step_categories: pd.DataFrame  # step, scope, category, gpu_ms
    devices: pd.DataFrame  # gpu_time.DEVICE_COLUMNS
    step_pattern: str | None  # the regex that defined `steps`; None when no scope matched
    gpu_ms: float  # summed durations of all GPU activities (overlapping streams count twice)
    busy_ms: float  # union of activity intervals, summed over devices
    window_ms: float  # first activity start → last activity end, summed over devices
    outside_scopes_ms: float  # GPU time launched outside every record_function scope
    unlaunched: int  # GPU activities whose launching host call is not in the trace
    origin_us: float  # trace timestamp that the steps' *_start_ms / *_end_ms count from
    read: ReadStats
    read_s: float

    @property
    def idle_ms(self) -> float:
        return self.window_ms - self.busy_ms

    @property
    def busy_pct(self) -> float:
        return 100.0 * self.busy_ms / self.window_ms if self.window_ms > 0 else 0.0


def analyze_trace(
    path: Path | str,
    categories: CategoryMap | Path | str | None = None,
    step_regex: str | None = None,
    *,
    parser: Parser = "auto",
    progress: ProgressCallback | None = None,
) -> TraceAnalysis:
    """Read one trace (streaming) and compute every table.

    categories: a CategoryMap, a YAML path, the name of a file in conf/profile_categories/, or None (the guide's).
    step_regex: names the step scopes (group 1 = step number); None tries DEFAULT_STEP_PATTERNS in order.
    """
    category_map = categories if isinstance(categories, CategoryMap) else load_categories(categories)
    step_patterns = _step_patterns(step_regex)
    started = time.perf_counter()
    events, stats = read_trace(path, parser=parser, progress=progress)
    read_s = time.perf_counter() - started
    if not len(events.gpu_start_us):
        raise DiffexpError(
            f"{path}: no GPU kernels, memcpys or memsets in the trace; record it with ProfilerActivity.CUDA"
        )
    log.info(
        "%s: %.1f MB read with the %s parser in %.2f s (%.0f MB/s), %d GPU activities",
        path,
        stats.raw_bytes / 1e6,
        stats.parser,
        read_s,
        stats.raw_bytes / 1e6 / max(read_s, 1e-9),
        len(events.gpu_start_us),
    )
    total_us = float(events.gpu_dur_us.sum())
    attribution = attribute(events)
    categories_by_name = tables.name_categories(events, category_map)
    kernels = tables.kernel_table(events, categories_by_name, total_us)
    origin_us = float(events.gpu_start_us.min())
    if len(events.scope_start_us):
        origin_us = min(origin_us, float(events.scope_start_us.min()))
    step_pattern = next((p for p in step_patterns if _names_any(events.scope_names, p)), None)
    if step_pattern is None:
        step_table = pd.DataFrame(columns=tables.STEP_COLUMNS)
        step_categories = pd.DataFrame(columns=tables.STEP_CATEGORY_COLUMNS)
    else:
        step_table, step_categories = tables.step_tables(
            events, attribution, step_pattern, categories_by_name, origin_us
        )
    devices = device_table(events)
    outside = attribution.gpu_scope == NO_SCOPE
    return TraceAnalysis(
        source=str(path),
        category_map=category_map.name,
        category_names=category_map.names,
        kernels=kernels,
        categories=tables.category_table(kernels, category_map.names),
        scopes=tables.scope_table(events, attribution, total_us),
        scope_groups=tables.scope_table(events, attribution, total_us, grouped=True),
        steps=step_table,
        step_categories=step_categories,
        devices=devices,
        step_pattern=step_pattern.pattern if step_pattern is not None else None,
        gpu_ms=total_us / US_PER_MS,
        busy_ms=float(devices["busy_ms"].sum()),
        window_ms=float(devices["window_ms"].sum()),
        outside_scopes_ms=float(events.gpu_dur_us[outside].sum()) / US_PER_MS,
        unlaunched=int((~attribution.launched).sum()),
        origin_us=origin_us,
        read=stats,
        read_s=read_s,
    )


def summary_metrics(analysis: TraceAnalysis) -> dict[str, float]:
    """Flat scalars for MLflow: GPU/busy/idle time, time per category (every category of the map), steps."""
    metrics = {
        "profile.gpu_ms": analysis.gpu_ms,
        "profile.gpu_busy_ms": analysis.busy_ms,
        "profile.idle_ms": analysis.idle_ms,
        "profile.window_ms": analysis.window_ms,
        "profile.busy_pct": analysis.busy_pct,
        "profile.kernels": float(analysis.kernels["count"].sum()),
        "profile.outside_scopes_ms": analysis.outside_scopes_ms,
    }
    per_category = analysis.categories.set_index("category")["gpu_ms"]
    for category in dict.fromkeys((*analysis.category_names, *per_category.index)):
        metrics[f"profile.cat.{_metric_key(category)}_ms"] = float(per_category.get(category, 0.0))
    if len(analysis.steps):
        metrics["profile.steps"] = float(len(analysis.steps))
        metrics["profile.step_gpu_ms_mean"] = float(analysis.steps["gpu_ms"].mean())
        metrics["profile.step_gpu_ms_max"] = float(analysis.steps["gpu_ms"].max())
        metrics["profile.step_gpu_span_ms_mean"] = float(analysis.steps["gpu_span_ms"].mean())
    return metrics


def _metric_key(name: str) -> str:
    """MLflow metric names allow letters, digits, _ - . / and spaces; anything else becomes _."""
    return re.sub(r"[^0-9A-Za-z_\-./ ]", "_", name)


def _step_patterns(step_regex: str | None) -> tuple[re.Pattern[str], ...]:
    sources = DEFAULT_STEP_PATTERNS if step_regex is None else (step_regex,)
    try:
        return tuple(re.compile(source) for source in sources)
    except re.error as err:
        raise DiffexpError(f"step regex {step_regex!r} is not a valid regular expression: {err}") from err


def _names_any(names: tuple[str, ...], pattern: re.Pattern[str]) -> bool:
    return any(pattern.search(name) for name in names)
