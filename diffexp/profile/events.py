"""The few trace events the analyzer needs, kept as compact typed columns instead of JSON objects.

Memory: one GPU activity costs 36 bytes (name id, device, stream, start, duration, correlation), one
launch 20 bytes, one record_function scope 24 bytes; names are interned once. CPU ops, flow events,
metadata and every `args` field we do not read are dropped as they stream past. On torch.profiler
traces of DiT runs that is about 1 byte kept per 40 bytes of raw JSON.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
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
        # Bound appends, looked up once: this is the per-event hot path of a several-hundred-MB read.
        self._gpu_append = tuple(column.append for column in self._gpu.values())
        self._launch_append = tuple(column.append for column in self._launch.values())
        self._scope_append = tuple(column.append for column in self._scope.values())
        self.handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            **{cat: self._gpu_handler(_CANONICAL_GPU_CATEGORY.get(cat, cat)) for cat in GPU_TRACE_CATEGORIES},
            **dict.fromkeys(LAUNCH_TRACE_CATEGORIES, self._add_launch),
            **dict.fromkeys(SCOPE_TRACE_CATEGORIES, self._add_scope),
        }

    def _gpu_handler(self, trace_category: str) -> Callable[[dict[str, Any]], None]:
        ids = self._gpu_ids
        name_id_, device_, stream_, start_, dur_, correlation_ = self._gpu_append

        def add_gpu(event: dict[str, Any]) -> None:
            dur = event.get("dur")
            if dur is None or event.get("ph") != "X":
                return
            args = event.get("args") or {}
            key = (event.get("name", ""), trace_category)
            name_id = ids.get(key)
            if name_id is None:
                name_id = ids[key] = len(ids)
            device = args.get("device", event.get("pid"))
            stream = args.get("stream", event.get("tid"))
            name_id_(name_id)
            device_(device if type(device) is int else -1)
            stream_(stream if type(stream) is int else -1)
            start_(event["ts"])
            dur_(dur)
            correlation_(args.get("correlation", -1))

        return add_gpu

    def _add_launch(self, event: dict[str, Any]) -> None:
        args = event.get("args")
        correlation = args.get("correlation") if args else None
        if correlation is None or event.get("ph") != "X":
            return
        thread_, start_, correlation_ = self._launch_append
        thread_(self._thread(event))
        start_(event["ts"])
        correlation_(correlation)

    def _add_scope(self, event: dict[str, Any]) -> None:
        if event.get("ph") != "X":
            return
        name_id_, thread_, start_, end_ = self._scope_append
        start_us = event["ts"]
        name_id_(self._scope_ids.setdefault(event.get("name", ""), len(self._scope_ids)))
        thread_(self._thread(event))
        start_(start_us)
        end_(start_us + event.get("dur", 0.0))

    def _thread(self, event: dict[str, Any]) -> int:
        key = (event.get("pid"), event.get("tid"))
        thread_id = self._thread_ids.get(key)
        if thread_id is None:
            thread_id = self._thread_ids[key] = len(self._thread_ids)
        return thread_id

    def finish(self) -> TraceEvents:
        gpu, launch, scope = (
            {
                key: np.frombuffer(column, dtype=column.typecode) if len(column) else np.zeros(0, column.typecode)
                for key, column in table.items()
            }
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
