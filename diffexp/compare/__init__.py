"""`python -m diffexp.compare BASE CANDIDATE`: per-stage deltas with a verdict each, for MLflow runs,
sweeps (point by point) and SGLang perf dumps, under the guide's rule or SGLang's compare_perf.py.

The names below load on first use (diffexp.lazy): `diffexp.compare.noise`, the verdicts `python -m diffexp.ab`
uses, imports no MLflow."""

from diffexp.lazy import exports

__getattr__, __all__ = exports(
    __name__,
    {
        **dict.fromkeys(["Comparison", "Row", "Side", "compare", "side_from_dump", "side_from_run"], "core"),
        **dict.fromkeys(["PerfDump", "read_perf_dump"], "perf_dump"),
        **dict.fromkeys(["IMPROVEMENT", "NEUTRAL", "REGRESSION", "RULES"], "rules"),
    },
)
