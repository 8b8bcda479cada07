"""The compute floor of a denoise step: its counted GEMM / attention / memory-bound work at the device's own
measured speed for exactly those shapes, and a run's efficiency against it (docs/floor.md)."""

from diffexp.floor.count import ForwardCounts, count_forward
from diffexp.floor.floor import Floor, floor_for, measure_floor

__all__ = ["Floor", "ForwardCounts", "count_forward", "floor_for", "measure_floor"]
