"""Attributes GPU activities to the record_function scopes that were open on the host when they were launched.

A kernel is tied to its launching host call (cudaLaunchKernel, cuLaunchKernelEx, cudaMemsetAsync, ...)
through `args.correlation`; the launch's start time on its thread then falls inside a nest of
`user_annotation` intervals on that same thread, and the innermost one owns the kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from diffexp.profile.events import TraceEvents

NO_SCOPE = -1


@dataclass(frozen=True)
class ScopeAttribution:
    """Per GPU activity: its launch time and innermost scope; per scope instance: its parent and a topological order."""

    gpu_launch_thread: np.ndarray  # thread id of the launching call, -1 when the launch is not in the trace
    gpu_launch_start_us: np.ndarray
    gpu_scope: np.ndarray  # innermost scope instance, NO_SCOPE when none
    scope_parent: np.ndarray  # parent scope instance, NO_SCOPE for a root
    scope_topo_order: np.ndarray  # every parent comes before its children

    @property
    def launched(self) -> np.ndarray:
        return self.gpu_launch_thread >= 0


def attribute(events: TraceEvents) -> ScopeAttribution:
    launch_thread, launch_start = _join_launches(events)
    n_scopes = len(events.scope_start_us)
    parent = np.full(n_scopes, NO_SCOPE, dtype=np.int64)
    gpu_scope = np.full(len(events.gpu_start_us), NO_SCOPE, dtype=np.int64)
    topo_parts: list[np.ndarray] = []
    for thread in np.unique(events.scope_thread):
        members = np.flatnonzero(events.scope_thread == thread)
        # Start ascending, then longest first: an enclosing scope precedes what it encloses.
        ordered = members[np.lexsort((-events.scope_end_us[members], events.scope_start_us[members]))]
        topo_parts.append(ordered)
        bounds_us, owners = _innermost_segments(ordered, events.scope_start_us, events.scope_end_us, parent)
        kernels = np.flatnonzero(launch_thread == thread)
        if kernels.size and bounds_us.size:
            segment = np.searchsorted(bounds_us, launch_start[kernels], side="right") - 1
            gpu_scope[kernels] = np.where(segment >= 0, owners[np.maximum(segment, 0)], NO_SCOPE)
    topo = np.concatenate(topo_parts) if topo_parts else np.zeros(0, dtype=np.int64)
    return ScopeAttribution(launch_thread, launch_start, gpu_scope, parent, topo)


def _join_launches(events: TraceEvents) -> tuple[np.ndarray, np.ndarray]:
    """For each GPU activity, the thread and start of the host call with the same correlation id."""
    n_gpu = len(events.gpu_correlation)
    thread = np.full(n_gpu, -1, dtype=np.int64)
    start_us = np.full(n_gpu, np.nan)
    if not len(events.launch_correlation) or not n_gpu:
        return thread, start_us
    order = np.argsort(events.launch_correlation, kind="stable")
    sorted_corr = events.launch_correlation[order]
    position = np.clip(np.searchsorted(sorted_corr, events.gpu_correlation), 0, len(order) - 1)
    found = (sorted_corr[position] == events.gpu_correlation) & (events.gpu_correlation >= 0)
    launch = order[position[found]]
    thread[found] = events.launch_thread[launch]
    start_us[found] = events.launch_start_us[launch]
    return thread, start_us


def _innermost_segments(
    ordered: np.ndarray, start_us: np.ndarray, end_us: np.ndarray, parent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sweep one thread's scopes into a step function: from bounds_us[i] on, owners[i] is innermost.

    Scopes are half-open [start, end). A child that ends a hair after its parent (timestamp rounding)
    is clipped to the parent's end. Fills `parent` for these scopes as a side effect.
    """
    bounds: list[float] = []
    owners: list[int] = []

    def mark(time_us: float, owner: int) -> None:
        if bounds and bounds[-1] == time_us:
            owners[-1] = owner  # several boundaries at one instant: the last word is the state after it
        else:
            bounds.append(time_us)
            owners.append(owner)

    open_scopes: list[tuple[float, int]] = []  # (end, scope) from outermost to innermost
    for scope in ordered.tolist():
        begin = float(start_us[scope])
        while open_scopes and open_scopes[-1][0] <= begin:
            closed_end, _ = open_scopes.pop()
            mark(closed_end, open_scopes[-1][1] if open_scopes else NO_SCOPE)
        end = float(end_us[scope])
        if open_scopes:
            parent[scope] = open_scopes[-1][1]
            end = min(end, open_scopes[-1][0])
        open_scopes.append((end, scope))
        mark(begin, scope)
    while open_scopes:
        closed_end, _ = open_scopes.pop()
        mark(closed_end, open_scopes[-1][1] if open_scopes else NO_SCOPE)
    return np.asarray(bounds, dtype=np.float64), np.asarray(owners, dtype=np.int64)


def inclusive_sums(values: np.ndarray, attribution: ScopeAttribution) -> np.ndarray:
    """Roll per-instance (exclusive) values up the scope tree into inclusive ones."""
    inclusive = values.astype(np.float64).copy()
    parent = attribution.scope_parent
    for scope in attribution.scope_topo_order[::-1].tolist():
        if parent[scope] != NO_SCOPE:
            inclusive[parent[scope]] += inclusive[scope]
    return inclusive


def has_ancestor_where(flags: np.ndarray, attribution: ScopeAttribution) -> np.ndarray:
    """For each scope instance: is any of its ancestors flagged?"""
    result = np.zeros(len(flags), dtype=bool)
    parent = attribution.scope_parent
    for scope in attribution.scope_topo_order.tolist():
        up = parent[scope]
        if up != NO_SCOPE:
            result[scope] = bool(flags[up]) or result[up]
    return result


def has_same_name_ancestor(name_ids: np.ndarray, attribution: ScopeAttribution) -> np.ndarray:
    """Recursive scopes (a name nested in itself) must not be counted twice in a per-name inclusive total."""
    result = np.zeros(len(name_ids), dtype=bool)
    parent, names = attribution.scope_parent, name_ids
    for scope in range(len(result)):
        up = parent[scope]
        while up != NO_SCOPE and not result[scope]:
            result[scope] = names[up] == names[scope]
            up = parent[up]
    return result


def owning_instance(selected: np.ndarray, attribution: ScopeAttribution) -> np.ndarray:
    """For each scope instance, the nearest selected instance among itself and its ancestors (or NO_SCOPE)."""
    owner = np.where(selected, np.arange(len(selected)), NO_SCOPE)
    parent = attribution.scope_parent
    for scope in attribution.scope_topo_order.tolist():
        if owner[scope] == NO_SCOPE and parent[scope] != NO_SCOPE:
            owner[scope] = owner[parent[scope]]
    return owner


def matching_names(names: tuple[str, ...], pattern: re.Pattern[str]) -> np.ndarray:
    return np.fromiter((pattern.search(name) is not None for name in names), dtype=bool, count=len(names))
