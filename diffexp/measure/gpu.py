"""The GPU's state during a measured window, through NVML: a sampler thread (~20 Hz) that can dump its raw
samples, and a pure summary of samples into metrics and throttle tags.

pynvml (package nvidia-ml-py) is imported lazily: without it, or without an NVIDIA driver, nothing is sampled.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from statistics import fmean
from typing import Optional

log = logging.getLogger(__name__)

SAMPLE_HZ = 20.0
# NVML clock-event (throttle) reason bits (nvml.h, nvmlClocksEventReason*; formerly nvmlClocksThrottleReason*).
REASON_BITS = {
    "gpu_idle": 0x1,
    "applications_clocks": 0x2,
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sync_boost": 0x10,
    "sw_thermal": 0x20,
    "hw_thermal": 0x40,
    "hw_power_brake": 0x80,
    "display_clocks": 0x100,
}
# Reasons that mean the GPU ran below the clock it would otherwise have chosen; idle, application clocks,
# sync boost and display clocks are settings or gaps, not limits hit by the work.
THROTTLE_CLASSES = {
    "power": ("sw_power_cap", "hw_power_brake"),
    "thermal": ("sw_thermal", "hw_thermal"),
    "hw_slowdown": ("hw_slowdown",),
}
# A busy sample (utilisation at least this) whose SM clock is this fraction below the window's highest busy
# clock means the clocks fell during measurement.
BUSY_UTIL_PCT = 50.0
CLOCK_DROP_FRACTION = 0.10


@dataclass(frozen=True)
class GpuSample:
    t_s: float  # seconds since the sampler started
    gpu: int  # NVML index
    sm_mhz: float
    mem_mhz: float
    power_w: float
    power_limit_w: float
    temp_c: float
    util_pct: float
    mem_util_pct: float
    reasons: int  # clock-event reason bitmask

    def reason_names(self) -> list[str]:
        return [name for name, bit in REASON_BITS.items() if self.reasons & bit]


def throttle_classes(samples: list[GpuSample]) -> list[str]:
    """power / thermal / hw_slowdown: the limits any sample hit, in THROTTLE_CLASSES order."""
    seen = {name for s in samples for name in s.reason_names()}
    return [cls for cls, names in THROTTLE_CLASSES.items() if seen.intersection(names)]


def clocks_fell(samples: list[GpuSample]) -> bool:
    """Whether a busy sample's SM clock fell more than CLOCK_DROP_FRACTION below the highest busy SM clock."""
    busy = [s.sm_mhz for s in samples if s.util_pct >= BUSY_UTIL_PCT]
    return bool(busy) and min(busy) < (1 - CLOCK_DROP_FRACTION) * max(busy)


def summarize_samples(samples: list[GpuSample], other_procs_mib: Optional[float] = None) -> tuple[dict, dict]:
    """(metrics, tags) of a measured window: clocks, power, temperature, utilisation, and the throttle verdict.

    `gpu.throttled=true` when a power / thermal / slowdown reason was set in any sample or the clocks fell."""
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    if other_procs_mib is not None:
        metrics["gpu.other_procs_mib"] = other_procs_mib
    if not samples:
        return metrics, tags
    sm = [s.sm_mhz for s in samples]
    metrics.update(
        {
            "gpu.samples": float(len(samples)),
            "gpu.sm_mhz_min": min(sm),
            "gpu.sm_mhz_mean": fmean(sm),
            "gpu.sm_mhz_max": max(sm),
            "gpu.mem_mhz_min": min(s.mem_mhz for s in samples),
            "gpu.mem_mhz_mean": fmean(s.mem_mhz for s in samples),
            "gpu.power_w_mean": fmean(s.power_w for s in samples),
            "gpu.power_w_max": max(s.power_w for s in samples),
            "gpu.power_limit_w": min(s.power_limit_w for s in samples),
            "gpu.temp_c_max": max(s.temp_c for s in samples),
            "gpu.util_pct_mean": fmean(s.util_pct for s in samples),
        }
    )
    classes = throttle_classes(samples)
    fell = clocks_fell(samples)
    tags["gpu.throttle"] = ",".join(classes) or "none"
    tags["gpu.clocks_fell"] = str(fell).lower()
    tags["gpu.throttled"] = str(bool(classes) or fell).lower()
    return metrics, tags


def write_samples(samples: list[GpuSample], path: Path) -> Path:
    """Raw samples as JSON (`.json`) or CSV (anything else); read back with read_samples."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps([asdict(s) for s in samples], indent=1))
        return path
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[f.name for f in fields(GpuSample)])
        writer.writeheader()
        writer.writerows(asdict(s) for s in samples)
    return path


def read_samples(path: Path) -> list[GpuSample]:
    path = Path(path)
    if path.suffix == ".json":
        rows = json.loads(path.read_text())
    else:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    types = {f.name: int if f.type in ("int", int) else float for f in fields(GpuSample)}
    return [GpuSample(**{k: types[k](float(v)) for k, v in row.items()}) for row in rows]


def nvml_indices() -> Optional[list[int]]:
    """NVML indices of this process's GPUs (CUDA_VISIBLE_DEVICES when it names indices, else all); None: no NVML."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no package, no driver: nothing to sample
        return None
    count = pynvml.nvmlDeviceGetCount()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and all(part.strip().isdigit() for part in visible.split(",") if part.strip()):
        return [int(p) for p in visible.split(",") if p.strip() and int(p) < count]
    if visible is not None:  # UUIDs or MIG names: find them by UUID
        wanted = [p.strip() for p in visible.split(",") if p.strip()]
        found = []
        for i in range(count):
            uuid = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i))
            uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
            if any(uuid.startswith(w) for w in wanted):
                found.append(i)
        return found
    return list(range(count))


def _reasons(pynvml, handle) -> int:
    for name in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
        fn = getattr(pynvml, name, None)
        if fn is not None:
            try:
                return int(fn(handle))
            except pynvml.NVMLError:
                continue
    return 0


def _read(pynvml, handle, index: int, t_s: float) -> GpuSample:
    util = pynvml.nvmlDeviceGetUtilizationRates(handle)
    return GpuSample(
        t_s=t_s,
        gpu=index,
        sm_mhz=float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)),
        mem_mhz=float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM)),
        power_w=pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
        power_limit_w=pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0,
        temp_c=float(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)),
        util_pct=float(util.gpu),
        mem_util_pct=float(util.memory),
        reasons=_reasons(pynvml, handle),
    )


def other_processes_mib(pynvml, handles) -> float:
    """GPU memory held by other processes on these GPUs (their work competes with the measurement)."""
    own, total = os.getpid(), 0.0
    for handle in handles:
        try:
            procs = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
        except pynvml.NVMLError:
            continue
        total += sum((p.usedGpuMemory or 0) for p in procs if p.pid != own) / 2**20
    return total


class GpuSampler:
    """`with GpuSampler() as s:` samples this process's GPUs every 1/hz s on a daemon thread until exit.

    Inactive (no samples, `active` False) where NVML is unavailable."""

    def __init__(self, hz: float = SAMPLE_HZ, indices: Optional[list[int]] = None):
        self.period_s = 1.0 / hz
        self.indices = indices if indices is not None else nvml_indices()
        self.samples: list[GpuSample] = []
        self.other_procs_mib: Optional[float] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def active(self) -> bool:
        return bool(self.indices)

    def __enter__(self) -> GpuSampler:
        if not self.active:
            return self
        import pynvml

        handles = [(i, pynvml.nvmlDeviceGetHandleByIndex(i)) for i in self.indices]
        self.other_procs_mib = other_processes_mib(pynvml, [h for _, h in handles])
        start = time.perf_counter()

        def loop():
            while not self._stop.is_set():
                t = time.perf_counter() - start
                for index, handle in handles:
                    try:
                        self.samples.append(_read(pynvml, handle, index, t))
                    except pynvml.NVMLError as exc:  # one failed reading must not end the run
                        log.debug("NVML reading failed: %s", exc)
                self._stop.wait(self.period_s)

        self._thread = threading.Thread(target=loop, name="gpu-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> bool:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
        return False

    def summary(self) -> tuple[dict, dict]:
        return summarize_samples(self.samples, self.other_procs_mib)
