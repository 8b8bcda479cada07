"""Parallel runs of the in-process engine: one process per rank (NCCL on GPUs, gloo on CPU).

`launch` starts and watches the ranks from the run's own process; `worker` is one rank; `layout` arranges
ranks into CFG groups × ring × Ulysses; `context_parallel` and `cfg_parallel` shard the pipeline.
"""
