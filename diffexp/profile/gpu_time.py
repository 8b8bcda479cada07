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
    starts = start_us[order]
    reach = end_us[order]
    np.maximum.accumulate(reach, out=reach)  # furthest end seen so far
    # In start order, interval i adds what it reaches beyond both its own start and everything before it.
    gained = np.maximum(starts[1:], reach[:-1])
    np.subtract(reach[1:], gained, out=gained)
    np.maximum(gained, 0.0, out=gained)
    return float(reach[0] - starts[0] + gained.sum())


def device_table(events: TraceEvents) -> pd.DataFrame:
    """One row per device: window (first activity start → last end), busy, idle, summed activity time."""
    rows = []
    devices = np.unique(events.gpu_device).tolist()
    for device in devices:
        # The usual single-GPU trace needs no per-device copies of its columns.
        on_device = slice(None) if len(devices) == 1 else events.gpu_device == device
        starts, durations = events.gpu_start_us[on_device], events.gpu_dur_us[on_device]
        ends = starts + durations
        window_us = float(ends.max() - starts.min())
        busy_us = union_length_us(starts, ends)
        rows.append(
            {
                "device": device,
                "window_ms": window_us / US_PER_MS,
                "busy_ms": busy_us / US_PER_MS,
                "idle_ms": (window_us - busy_us) / US_PER_MS,
                "busy_pct": 100.0 * busy_us / window_us if window_us > 0 else 0.0,
                "gpu_ms": float(durations.sum()) / US_PER_MS,
                "activities": len(starts),
                "streams": int(np.unique(events.gpu_stream[on_device]).size),
            }
        )
    return pd.DataFrame(rows, columns=DEVICE_COLUMNS)


DEVICE_COLUMNS = ["device", "window_ms", "busy_ms", "idle_ms", "busy_pct", "gpu_ms", "activities", "streams"]
