"""Busy and idle GPU time per device: the union of its activity intervals over its profiled window."""

from __future__ import annotations

import numpy as np
import pandas as pd

from diffexp.profile.events import TraceEvents

US_PER_MS = 1000.0


def union_length_us(start_us: np.ndarray, end_us: np.ndarray) -> float:
    """Total length covered by a set of intervals (overlaps, e.g. concurrent streams, counted once)."""
    if not len(start_us):
        return 0.0
    order = np.argsort(start_us, kind="stable")
    starts, ends = start_us[order], end_us[order]
    reach = np.maximum.accumulate(ends)  # furthest end seen so far
    # A new busy block begins wherever an interval starts after everything before it has ended.
    opens = np.concatenate(([True], starts[1:] > reach[:-1]))
    block_first = np.flatnonzero(opens)
    block_last = np.concatenate((block_first[1:] - 1, [len(starts) - 1]))
    return float(np.sum(reach[block_last] - starts[block_first]))


def device_table(events: TraceEvents) -> pd.DataFrame:
    """One row per device: window (first activity start → last end), busy, idle, summed activity time."""
    rows = []
    end_us = events.gpu_end_us
    for device in np.unique(events.gpu_device).tolist():
        on_device = events.gpu_device == device
        starts, ends = events.gpu_start_us[on_device], end_us[on_device]
        window_us = float(ends.max() - starts.min())
        busy_us = union_length_us(starts, ends)
        rows.append(
            {
                "device": device,
                "window_ms": window_us / US_PER_MS,
                "busy_ms": busy_us / US_PER_MS,
                "idle_ms": (window_us - busy_us) / US_PER_MS,
                "busy_pct": 100.0 * busy_us / window_us if window_us > 0 else 0.0,
                "gpu_ms": float(events.gpu_dur_us[on_device].sum()) / US_PER_MS,
                "activities": int(on_device.sum()),
                "streams": int(np.unique(events.gpu_stream[on_device]).size),
            }
        )
    return pd.DataFrame(rows, columns=DEVICE_COLUMNS)


DEVICE_COLUMNS = ["device", "window_ms", "busy_ms", "idle_ms", "busy_pct", "gpu_ms", "activities", "streams"]
