"""Benchmark drivers: each measures something whose figures are recorded in docs/results/ (dated, with the machine
and the command): the FLUX.1-dev-size DiT (flux_dit), the kernel micro-benchmark (kernels), the kernels A/B (transformer_ab), the trace reader
(trace_reader), start-up cost (startup), and the H200 measurement script (measurement_h200.sh)."""
