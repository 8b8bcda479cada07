"""Fixtures for the trace analyzer: the recorded H100 trace and a builder of small synthetic traces."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE_TRACE = REPO.parent / "shared" / "fixtures" / "traces" / "flux1dev_dit_eager_h100.trace.json.gz"


@pytest.fixture(scope="session")
def fixture_trace() -> Path:
    if not FIXTURE_TRACE.is_file():
        pytest.skip(f"recorded trace {FIXTURE_TRACE} is absent (it comes with the shared/ checkout beside the repo)")
    return FIXTURE_TRACE


@pytest.fixture(scope="session")
def fixture_events(fixture_trace: Path) -> list[dict[str, Any]]:
    """The fixture's raw events, json.load-ed whole (fine for 15 MB) for independent reference figures."""
    with gzip.open(fixture_trace, "rt", encoding="utf-8") as handle:
        return json.load(handle)["traceEvents"]


@pytest.fixture(scope="session")
def fixture_analysis(fixture_trace: Path):
    from diffexp.profile import analyze_trace

    return analyze_trace(fixture_trace)


class TraceBuilder:
    """Writes small Chrome traces shaped like torch.profiler's: scopes, launches, kernels, flows and CPU-op noise."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._correlation = 0

    def scope(self, name: str, start_us: float, end_us: float, pid: int = 1, tid: int = 10) -> None:
        self.events.append(
            {
                "ph": "X",
                "cat": "user_annotation",
                "name": name,
                "pid": pid,
                "tid": tid,
                "ts": start_us,
                "dur": end_us - start_us,
                "args": {"External id": len(self.events)},
            }
        )

    def kernel(
        self,
        name: str,
        start_us: float,
        dur_us: float,
        launch_at: float | None = None,
        pid: int = 1,
        tid: int = 10,
        device: int = 0,
        stream: int = 7,
        cat: str = "kernel",
        launch_cat: str = "cuda_runtime",
        launch_name: str = "cudaLaunchKernel",
    ) -> int:
        """A GPU activity; with `launch_at`, also the host call on (pid, tid) that launched it."""
        self._correlation += 1
        correlation = self._correlation
        if launch_at is not None:
            self.events.append(
                {
                    "ph": "X",
                    "cat": launch_cat,
                    "name": launch_name,
                    "pid": pid,
                    "tid": tid,
                    "ts": launch_at,
                    "dur": 3.0,
                    "args": {"External id": 0, "correlation": correlation},
                }
            )
            self.events.append(
                {"ph": "s", "id": correlation, "pid": pid, "tid": tid, "ts": launch_at, "cat": "ac2g", "name": "ac2g"}
            )
            self.events.append(
                {
                    "ph": "X",
                    "cat": "cpu_op",
                    "name": "aten::noise",
                    "pid": pid,
                    "tid": tid,
                    "ts": launch_at,
                    "dur": 1.0,
                    "args": {"External id": 0},
                }
            )
        self.events.append(
            {
                "ph": "X",
                "cat": cat,
                "name": name,
                "pid": device,
                "tid": stream,
                "ts": start_us,
                "dur": dur_us,
                "args": {
                    "External id": 0,
                    "device": device,
                    "stream": stream,
                    "correlation": correlation,
                    "grid": [1, 1, 1],
                    "block": [128, 1, 1],
                },
            }
        )
        self.events.append(
            {
                "ph": "f",
                "id": correlation,
                "pid": device,
                "tid": stream,
                "ts": start_us,
                "cat": "ac2g",
                "name": "ac2g",
                "bp": "e",
            }
        )
        return correlation

    def write(self, path: Path, layout: str = "lines", gz: bool = False) -> Path:
        """layout: lines (one event per line, kineto's key order), array (bare-array form),
        args_first (args before cat: the fast parser must hand over to ijson)."""
        events = self.events
        if layout == "args_first":
            events = [{"args": e.get("args", {}), **{k: v for k, v in e.items() if k != "args"}} for e in events]
        body = ",\n".join("  " + json.dumps(e) for e in events)
        if layout == "array":
            text = "[\n" + body + "\n]\n"
        else:
            text = '{\n  "schemaVersion": 1,\n  "traceEvents": [\n' + body + '\n  ],\n  "traceName": "t"\n}\n'
        data = text.encode("utf-8")
        path.write_bytes(gzip.compress(data) if gz else data)
        return path


@pytest.fixture
def trace_builder() -> TraceBuilder:
    return TraceBuilder()


@pytest.fixture
def trace_builder_factory() -> type[TraceBuilder]:
    """For tests that build several traces."""
    return TraceBuilder
