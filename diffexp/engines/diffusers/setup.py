"""Load the pipeline and apply the run's offload, attention, kernels, parallelism and compile choices."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from diffexp.config.schema import Config
from diffexp.engines import pipeline_setup
from diffexp.engines.diffusers.call import call_kwargs, seed_of
from diffexp.measure.clocks import StageClock
from diffexp.models import load_pipeline


@dataclass
class Loaded:
    """A pipeline ready to generate, with the arguments of every generation of this run."""

    pipe: Any
    kwargs: dict
    seed: int
    placement: dict[str, str]
    patched: list[str]
    # A random-weight build's cost (models.arch.BuildStats: build_s, build_host_rss_gib); empty for a checkpoint.
    build_metrics: dict[str, float] = field(default_factory=dict)

    def generator(self) -> torch.Generator:
        # A fresh generator per generation: every repeat generates the same output.
        return torch.Generator("cpu").manual_seed(self.seed)


def load(
    cfg: Config, device: torch.device, clock: StageClock, parallelize: Optional[Callable[[Any], None]] = None
) -> Loaded:
    """Timed as the `load` stage. `parallelize` (a rank's sharding) runs before compile."""
    with clock.stage("load"):
        pipe = load_pipeline(cfg.model, device)
        placement = pipeline_setup.apply_offload(pipe, cfg.offload, device)
        pipeline_setup.apply_attention(pipe, cfg.attention.backend)
        patched = pipeline_setup.apply_kernels(pipe, cfg.kernels)
        if parallelize is not None:
            parallelize(pipe)
        pipeline_setup.apply_compile(pipe, cfg)
    pipe.set_progress_bar_config(disable=True)
    stats = getattr(pipe, "build_stats", None)  # set by the random-weight builder only
    build_metrics = stats.metrics() if stats is not None else {}
    return Loaded(pipe, call_kwargs(cfg, pipe), seed_of(cfg), placement, patched, build_metrics)
