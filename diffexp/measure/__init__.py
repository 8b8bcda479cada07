"""Measurement: device-synchronised clocks (`clocks`), statistics of repeated trials (`stats`), the GPU's state
during a measured window (`gpu`), and the aggregation of repeats and replicates into one RunResult (`aggregate`)."""

from diffexp.measure.clocks import StageClock, StepClock, peak_memory_gib, reset_peak_memory, synchronize

__all__ = ["StageClock", "StepClock", "peak_memory_gib", "reset_peak_memory", "synchronize"]
