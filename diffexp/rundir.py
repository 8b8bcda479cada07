"""The one run-directory layout: the names of the files and folders a run writes under its own directory, and the
same names as MLflow artifact paths (a run's artifacts mirror its directory). Defined once; every module imports
them."""

CONFIG_YAML = "config.yaml"  # the composed config, as run
RUN_LOG = "run.log"  # everything logged during the run
METRICS_JSON = "metrics.json"  # the RunResult (untracked runs keep their figures here)
OUTPUTS = "outputs"  # generated images and videos
TRACES = "traces"  # profiler traces
RANKS = "ranks"  # per-rank logs of a parallel in-process run
SGLANG_LOG = "sglang.log"  # `sglang generate`'s console
PERF_DUMP = "perf_dump.json"  # SGLang's perf dump
FLOOR = "floor"  # the compute floor of the run's step (measure.floor=true): floor.json, floor.md
