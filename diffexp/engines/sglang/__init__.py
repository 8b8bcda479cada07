"""SGLang Diffusion engine: config → `sglang generate` argv (flags), environment (env), a supervised
subprocess (process), and a RunResult from its perf dump and log (harvest)."""

from diffexp.engines.sglang.engine import SGLangEngine

__all__ = ["SGLangEngine"]
