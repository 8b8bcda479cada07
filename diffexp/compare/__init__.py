"""`python -m diffexp.compare BASE CANDIDATE`: per-stage deltas with a verdict each, for MLflow runs,
sweeps (point by point) and SGLang perf dumps, under the guide's rule or SGLang's compare_perf.py.

The names below load on first use, so `diffexp.compare.noise` (the verdicts, used by `python -m diffexp.ab`
on a GPU box without MLflow) imports no MLflow."""

from importlib import import_module

_HOMES = {
    "Comparison": "core",
    "Row": "core",
    "Side": "core",
    "compare": "core",
    "side_from_dump": "core",
    "side_from_run": "core",
    "PerfDump": "perf_dump",
    "read_perf_dump": "perf_dump",
    "IMPROVEMENT": "rules",
    "NEUTRAL": "rules",
    "REGRESSION": "rules",
    "RULES": "rules",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"diffexp.compare.{_HOMES[name]}"), name)
