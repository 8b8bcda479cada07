"""The few trace events the analyzer needs, kept as compact typed columns instead of JSON objects.

Memory: one GPU activity costs 36 bytes (name id, device, stream, start, duration, correlation), one
launch 20 bytes, one record_function scope 24 bytes; names are interned once. CPU ops, flow events,
metadata and every `args` field we do not read are dropped as they stream past. On torch.profiler
traces of DiT runs that is about 1 byte kept per 40 bytes of raw JSON.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np

# torch.profiler (kineto) categories; the capitalised ones are what kineto wrote before 2022.
GPU_TRACE_CATEGORIES = frozenset({"kernel", "gpu_memcpy", "gpu_memset", "Kernel", "Memcpy", "Memset"})
# Host calls that carry the correlation id of the GPU work they enqueue (cudaLaunchKernel, cuLaunchKernelEx, ...).
LAUNCH_TRACE_CATEGORIES = frozenset({"cuda_runtime", "cuda_driver", "Runtime"})
SCOPE_TRACE_CATEGORIES = frozenset({"user_annotation"})
WANTED_TRACE_CATEGORIES = GPU_TRACE_CATEGORIES | LAUNCH_TRACE_CATEGORIES | SCOPE_TRACE_CATEGORIES
_CANONICAL_GPU_CATEGORY = {"Kernel": "kernel", "Memcpy": "gpu_memcpy", "Memset": "gpu_memset"}


@dataclass(frozen=True)
class TraceEvents:
    """Columns of one trace. Times are the trace's microseconds; ids index the name/thread lists."""

    gpu_names: tuple[str, ...]
    gpu_name_trace_categories: tuple[str, ...]  # per gpu name id: kernel | gpu_memcpy | gpu_memset
    gpu_name_id: np.ndarray
    gpu_device: np.ndarray
    gpu_stream: np.ndarray
    gpu_start_us: np.ndarray
    gpu_dur_us: np.ndarray
    gpu_correlation: np.ndarray
    threads: tuple[tuple[Any, Any], ...]  # (pid, tid) per thread id
    launch_thread: np.ndarray
    launch_start_us: np.ndarray
    launch_correlation: np.ndarray
    scope_names: tuple[str, ...]
    scope_name_id: np.ndarray
    scope_thread: np.ndarray
    scope_start_us: np.ndarray
    scope_end_us: np.ndarray

    @property
    def gpu_end_us(self) -> np.ndarray:
        return self.gpu_start_us + self.gpu_dur_us


class EventCollector:
    """Receives decoded trace events one at a time and keeps only what TraceEvents holds."""

    def __init__(self) -> None:
        self._gpu_ids: dict[tuple[str, str], int] = {}
        self._thread_ids: dict[tuple[Any, Any], int] = {}
        self._scope_ids: dict[str, int] = {}
        self._gpu = {key: array(code) for key, code in _GPU_COLUMNS.items()}
        self._launch = {key: array(code) for key, code in _LAUNCH_COLUMNS.items()}
        self._scope = {key: array(code) for key, code in _SCOPE_COLUMNS.items()}

    def add(self, event: dict[str, Any]) -> None:
        """Keep one event if it is a complete ("X") GPU activity, launch or user scope."""
        if event.get("ph") != "X":
            return
        category = event.get("cat")
        if category in GPU_TRACE_CATEGORIES:
            self._add_gpu(event, _CANONICAL_GPU_CATEGORY.get(category, category))
        elif category in LAUNCH_TRACE_CATEGORIES:
            correlation = (event.get("args") or {}).get("correlation")
            if correlation is not None:
                self._launch["thread"].append(self._thread(event))
                self._launch["start_us"].append(event["ts"])
                self._launch["correlation"].append(correlation)
        elif category in SCOPE_TRACE_CATEGORIES:
            name = event.get("name", "")
            name_id = self._scope_ids.setdefault(name, len(self._scope_ids))
            start_us = event["ts"]
            self._scope["name_id"].append(name_id)
            self._scope["thread"].append(self._thread(event))
            self._scope["start_us"].append(start_us)
            self._scope["end_us"].append(start_us + event.get("dur", 0.0))

    def _add_gpu(self, event: dict[str, Any], trace_category: str) -> None:
        dur = event.get("dur")
        if dur is None:
            return
        args = event.get("args") or {}
        key = (event.get("name", ""), trace_category)
        name_id = self._gpu_ids.get(key)
        if name_id is None:
            name_id = self._gpu_ids[key] = len(self._gpu_ids)
        device = args.get("device", event.get("pid"))
        stream = args.get("stream", event.get("tid"))
        columns = self._gpu
        columns["name_id"].append(name_id)
        columns["device"].append(device if isinstance(device, int) else -1)
        columns["stream"].append(stream if isinstance(stream, int) else -1)
        columns["start_us"].append(event["ts"])
        columns["dur_us"].append(dur)
        columns["correlation"].append(args.get("correlation", -1))

    def _thread(self, event: dict[str, Any]) -> int:
        key = (event.get("pid"), event.get("tid"))
        thread_id = self._thread_ids.get(key)
        if thread_id is None:
            thread_id = self._thread_ids[key] = len(self._thread_ids)
        return thread_id

    def finish(self) -> TraceEvents:
        gpu, launch, scope = (
            {key: np.frombuffer(column, dtype=column.typecode) if len(column) else np.zeros(0, column.typecode)
             for key, column in table.items()}
            for table in (self._gpu, self._launch, self._scope)
        )
        gpu_keys = tuple(self._gpu_ids)
        return TraceEvents(
            gpu_names=tuple(name for name, _ in gpu_keys),
            gpu_name_trace_categories=tuple(category for _, category in gpu_keys),
            gpu_name_id=gpu["name_id"],
            gpu_device=gpu["device"],
            gpu_stream=gpu["stream"],
            gpu_start_us=gpu["start_us"],
            gpu_dur_us=gpu["dur_us"],
            gpu_correlation=gpu["correlation"],
            threads=tuple(self._thread_ids),
            launch_thread=launch["thread"],
            launch_start_us=launch["start_us"],
            launch_correlation=launch["correlation"],
            scope_names=tuple(self._scope_ids),
            scope_name_id=scope["name_id"],
            scope_thread=scope["thread"],
            scope_start_us=scope["start_us"],
            scope_end_us=scope["end_us"],
        )


_GPU_COLUMNS = {"name_id": "i", "device": "i", "stream": "i", "start_us": "d", "dur_us": "d", "correlation": "q"}
_LAUNCH_COLUMNS = {"thread": "i", "start_us": "d", "correlation": "q"}
_SCOPE_COLUMNS = {"name_id": "i", "thread": "i", "start_us": "d", "end_us": "d"}
