"""The in-process engine: a diffusers pipeline run for the composed config and measured.

This module only dispatches: a parallel run to `engines.distributed`, profile=nsys to `engines.nsys_child`,
anything else to `generate`. Those two call back into `generate` and `device`, never into this module.

    device    which torch device a config names
    call      the pipeline-call arguments from the sampling config
    setup     load the pipeline and apply offload, attention, kernels, parallelism, compile
    warmup    untimed generations before the measured ones (optionally until step times settle)
    measured  the timed generations (repeats), each one's figures kept
    generate  the steps above in order, folded into one RunResult with the outputs saved
"""

from __future__ import annotations

from pathlib import Path

from diffexp.config.schema import Config
from diffexp.results import RunResult


class DiffusersEngine:
    def dry_run_text(self, cfg: Config) -> str:
        return (
            f"in-process diffusers run: {cfg.model.pipeline} from {cfg.model.path} (weights={cfg.model.weights}), "
            f"device={cfg.engine.device}, compile={cfg.compile.enabled}, offload={cfg.offload.name}, "
            f"attention={cfg.attention.backend or 'default'}, kernels={cfg.kernels.impl}"
        )

    def prepare(self, cfg: Config) -> None:
        if cfg.parallel.num_gpus > 1 or cfg.profile.mode == "nsys":
            return  # the pipeline runs in processes of their own
        from diffexp.engines.diffusers import generate  # noqa: F401  (torch, diffusers, the engine's steps)
        from diffexp.models.load import pipeline_class

        pipeline_class(cfg.model)

    def run(self, cfg: Config, run_dir: Path) -> RunResult:
        # Imported here: torch and diffusers load only when a run needs them.
        if cfg.parallel.num_gpus > 1:
            from diffexp.engines.distributed.launch import run_ranks

            return run_ranks(cfg, run_dir)
        if cfg.profile.mode == "nsys":
            from diffexp.engines.nsys_child import run_under_nsys

            return run_under_nsys(cfg, run_dir)
        from diffexp.engines.diffusers.device import resolve_device
        from diffexp.engines.diffusers.generate import generate

        return generate(cfg, run_dir, resolve_device(cfg))
