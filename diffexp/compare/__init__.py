"""`python -m diffexp.compare BASE CANDIDATE`: per-stage deltas with a verdict each, for MLflow runs,
sweeps (point by point) and SGLang perf dumps, under the guide's rule or SGLang's compare_perf.py."""

from diffexp.compare.core import Comparison, Row, Side, compare, side_from_dump, side_from_run
from diffexp.compare.perf_dump import PerfDump, read_perf_dump
from diffexp.compare.rules import IMPROVEMENT, NEUTRAL, REGRESSION, RULES

__all__ = [
    "Comparison",
    "IMPROVEMENT",
    "NEUTRAL",
    "PerfDump",
    "REGRESSION",
    "RULES",
    "Row",
    "Side",
    "compare",
    "read_perf_dump",
    "side_from_dump",
    "side_from_run",
]
