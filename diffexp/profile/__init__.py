"""Reads torch.profiler traces for you: kernels, categories, scopes, idle time, steps, before/after deltas.

Why not HolisticTraceAnalysis: HTA parses each trace into one pandas DataFrame holding every event
(its ijson option only drops python_function events first), so memory grows with the trace —
its issue #250 reports 950 GB of RAM for 200 GB of traces. Our reader streams the file and keeps only
the GPU activities, launches and record_function scopes it needs, as compact typed columns
(see `events.py` for the bytes per event), and skips the other events without parsing them
(see `reader.py`); it needs no dependency beyond ijson, numpy and pandas.
"""

from diffexp.profile.analysis import DEFAULT_STEP_PATTERNS, TraceAnalysis, analyze_trace, summary_metrics
from diffexp.profile.categories import CategoryMap, load_categories
from diffexp.profile.compare import TraceComparison, compare_traces
from diffexp.profile.report import write_report

__all__ = [
    "DEFAULT_STEP_PATTERNS",
    "CategoryMap",
    "TraceAnalysis",
    "TraceComparison",
    "analyze_trace",
    "compare_traces",
    "load_categories",
    "summary_metrics",
    "write_report",
]
