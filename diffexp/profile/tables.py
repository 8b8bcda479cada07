"""Builds the analysis tables (kernels, categories, scopes, steps) from a trace's columns."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from diffexp.profile import scopes as scope_tree
from diffexp.profile.categories import CategoryMap
from diffexp.profile.events import TraceEvents
from diffexp.profile.gpu_time import US_PER_MS
from diffexp.profile.scopes import NO_SCOPE, ScopeAttribution

KERNEL_COLUMNS = ["name", "category", "kind", "total_ms", "count", "mean_us", "share_pct"]
CATEGORY_COLUMNS = ["category", "gpu_ms", "count", "share_pct"]
SCOPE_COLUMNS = ["scope", "calls", "incl_gpu_ms", "excl_gpu_ms", "incl_kernels", "excl_kernels", "incl_share_pct"]
STEP_COLUMNS = [
    "step",
    "scope",
    "cpu_start_ms",
    "cpu_ms",
    "gpu_ms",
    "kernels",
    "gpu_start_ms",
    "gpu_end_ms",
    "gpu_span_ms",
]
STEP_CATEGORY_COLUMNS = ["step", "scope", "category", "gpu_ms"]
OUTSIDE_SCOPES = "(outside any scope)"
_NUMBER = re.compile(r"\d+")
_KIND = {"kernel": "kernel", "gpu_memcpy": "memcpy", "gpu_memset": "memset"}


def name_categories(events: TraceEvents, categories: CategoryMap) -> np.ndarray:
    """Category of each interned GPU name, as an object array indexed by name id."""
    pairs = zip(events.gpu_names, events.gpu_name_trace_categories, strict=True)
    return np.array([categories.classify(name, cat) for name, cat in pairs], dtype=object)


def kernel_table(events: TraceEvents, categories_by_name: np.ndarray, total_us: float) -> pd.DataFrame:
    """GPU activities grouped by name (and kind: kernel, memcpy, memset), largest total first."""
    n_names = len(events.gpu_names)
    total = np.bincount(events.gpu_name_id, weights=events.gpu_dur_us, minlength=n_names)
    count = np.bincount(events.gpu_name_id, minlength=n_names)
    table = pd.DataFrame(
        {
            "name": list(events.gpu_names),
            "category": categories_by_name,
            "kind": [_KIND.get(c, c) for c in events.gpu_name_trace_categories],
            "total_ms": total / US_PER_MS,
            "count": count,
            "mean_us": np.divide(total, count, out=np.zeros(n_names), where=count > 0),
            "share_pct": 100.0 * total / total_us if total_us > 0 else 0.0,
        },
        columns=KERNEL_COLUMNS,
    )
    return table.sort_values(["total_ms", "name"], ascending=[False, True], ignore_index=True)[KERNEL_COLUMNS]


def category_table(kernels: pd.DataFrame, category_order: tuple[str, ...]) -> pd.DataFrame:
    """GPU time per category, largest first; categories with no activity are left out."""
    grouped = kernels.groupby("category", sort=False).agg(gpu_ms=("total_ms", "sum"), count=("count", "sum"))
    total_ms = grouped["gpu_ms"].sum()
    grouped["share_pct"] = 100.0 * grouped["gpu_ms"] / total_ms if total_ms > 0 else 0.0
    rank = {name: i for i, name in enumerate(category_order)}
    table = grouped.reset_index()
    table["_rank"] = table["category"].map(lambda c: rank.get(c, len(rank)))
    table = table.sort_values(["gpu_ms", "_rank"], ascending=[False, True], ignore_index=True)
    return table[CATEGORY_COLUMNS]


def scope_table(
    events: TraceEvents,
    attribution: ScopeAttribution,
    total_us: float,
    grouped: bool = False,
) -> pd.DataFrame:
    """GPU time per record_function name: inclusive of nested scopes and exclusive (innermost only).

    grouped=True folds numbers in names (`transformer_blocks.#.attn`, `denoise_step_#`), so a part of
    every DiT block or every step reads as one row.
    """
    names, name_ids = _scope_names(events, grouped)
    n_scopes = len(name_ids)
    attributed = attribution.gpu_scope != NO_SCOPE
    owners = attribution.gpu_scope[attributed]
    excl_us = np.bincount(owners, weights=events.gpu_dur_us[attributed], minlength=n_scopes)
    excl_n = np.bincount(owners, minlength=n_scopes).astype(np.float64)
    incl_us = scope_tree.inclusive_sums(excl_us, attribution)
    incl_n = scope_tree.inclusive_sums(excl_n, attribution)
    # An instance nested in a same-named one is already inside that one's inclusive total.
    counted = ~scope_tree.has_same_name_ancestor(name_ids, attribution)
    n_names = len(names)

    def per_name(values: np.ndarray, keep: np.ndarray | slice = slice(None)) -> np.ndarray:
        return np.bincount(name_ids[keep], weights=values[keep], minlength=n_names)

    table = pd.DataFrame(
        {
            "scope": list(names),
            "calls": np.bincount(name_ids, minlength=n_names),
            "incl_gpu_ms": per_name(incl_us, counted) / US_PER_MS,
            "excl_gpu_ms": per_name(excl_us) / US_PER_MS,
            "incl_kernels": per_name(incl_n, counted).astype(np.int64),
            "excl_kernels": per_name(excl_n).astype(np.int64),
        }
    )
    outside = ~attributed
    if outside.any():
        outside_ms = float(events.gpu_dur_us[outside].sum()) / US_PER_MS
        n_outside = int(outside.sum())
        table.loc[len(table)] = [OUTSIDE_SCOPES, 0, outside_ms, outside_ms, n_outside, n_outside]
    table["incl_share_pct"] = 100.0 * table["incl_gpu_ms"] * US_PER_MS / total_us if total_us > 0 else 0.0
    return table.sort_values(["incl_gpu_ms", "scope"], ascending=[False, True], ignore_index=True)[SCOPE_COLUMNS]


def _scope_names(events: TraceEvents, grouped: bool) -> tuple[tuple[str, ...], np.ndarray]:
    """(names, name id per scope instance), with numbers folded to # when grouped."""
    if not grouped:
        return events.scope_names, events.scope_name_id
    folded = [_NUMBER.sub("#", name) for name in events.scope_names]
    index = {name: i for i, name in enumerate(dict.fromkeys(folded))}
    names = tuple(index)
    group_of = np.array([index[f] for f in folded], dtype=np.int64)
    return names, group_of[events.scope_name_id] if len(folded) else events.scope_name_id


def step_instances(events: TraceEvents, attribution: ScopeAttribution, pattern: re.Pattern[str]) -> np.ndarray:
    """Step scope instances: those whose name matches and that are not nested in another match."""
    matches = scope_tree.matching_names(events.scope_names, pattern)[events.scope_name_id]
    return matches & ~scope_tree.has_ancestor_where(matches, attribution)


def step_tables(
    events: TraceEvents,
    attribution: ScopeAttribution,
    pattern: re.Pattern[str],
    categories_by_name: np.ndarray,
    origin_us: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per step: host span, GPU time and span of the work it launched; and GPU time per step × category."""
    is_step = step_instances(events, attribution, pattern)
    step_of_scope = scope_tree.owning_instance(is_step, attribution)
    in_scope = attribution.gpu_scope != NO_SCOPE
    gpu_step = np.full(len(events.gpu_start_us), NO_SCOPE, dtype=np.int64)
    gpu_step[in_scope] = step_of_scope[attribution.gpu_scope[in_scope]]
    in_step = gpu_step != NO_SCOPE
    steps = np.flatnonzero(is_step)
    steps = steps[np.argsort(events.scope_start_us[steps], kind="stable")]
    n_steps = len(steps)
    row_of_instance = np.full(len(is_step), -1, dtype=np.int64)
    row_of_instance[steps] = np.arange(n_steps)
    # Plain numpy reductions: a pandas groupby here would cost several times the trace's own columns.
    rows = row_of_instance[gpu_step[in_step]]
    dur_us = events.gpu_dur_us[in_step]
    gpu_us = np.bincount(rows, weights=dur_us, minlength=n_steps)
    kernels = np.bincount(rows, minlength=n_steps)
    first_us = np.full(n_steps, np.inf)
    np.minimum.at(first_us, rows, events.gpu_start_us[in_step])
    last_us = np.full(n_steps, -np.inf)
    np.maximum.at(last_us, rows, events.gpu_start_us[in_step] + dur_us)
    first_us[kernels == 0], last_us[kernels == 0] = np.nan, np.nan
    labels = _step_labels(events, steps, pattern)
    step_table = pd.DataFrame(
        {
            "step": [index for index, _ in labels],
            "scope": [name for _, name in labels],
            "cpu_start_ms": (events.scope_start_us[steps] - origin_us) / US_PER_MS,
            "cpu_ms": (events.scope_end_us[steps] - events.scope_start_us[steps]) / US_PER_MS,
            "gpu_ms": gpu_us / US_PER_MS,
            "kernels": kernels,
            "gpu_start_ms": (first_us - origin_us) / US_PER_MS,
            "gpu_end_ms": (last_us - origin_us) / US_PER_MS,
            "gpu_span_ms": (last_us - first_us) / US_PER_MS,
        },
        columns=STEP_COLUMNS,
    )
    category_names, category_of_name = np.unique(categories_by_name.astype(str), return_inverse=True)
    n_categories = len(category_names)
    cell = rows * n_categories + category_of_name[events.gpu_name_id[in_step]]
    cell_us = np.bincount(cell, weights=dur_us, minlength=n_steps * n_categories)
    cell_n = np.bincount(cell, minlength=n_steps * n_categories)
    used = np.flatnonzero(cell_n)  # step-major, so rows come out in step order
    step_categories = pd.DataFrame(
        {
            "step": [labels[i // n_categories][0] for i in used],
            "scope": [labels[i // n_categories][1] for i in used],
            "category": category_names[used % n_categories],
            "gpu_ms": cell_us[used] / US_PER_MS,
        },
        columns=STEP_CATEGORY_COLUMNS,
    )
    return step_table, step_categories


def _step_labels(events: TraceEvents, steps: np.ndarray, pattern: re.Pattern[str]) -> list[tuple[int, str]]:
    """(step number, scope name) per step instance; the number is the regex's first group, else the ordinal."""
    labels = []
    for ordinal, step in enumerate(steps.tolist()):
        name = events.scope_names[events.scope_name_id[step]]
        found = pattern.search(name)
        digits = found.group(1) if found is not None and pattern.groups else None
        labels.append((int(digits) if digits and digits.isdigit() else ordinal, name))
    return labels
