"""What a run is called and tagged with, from its typed config: one rule for live runs, uploads and sweeps."""

from __future__ import annotations

from diffexp import names
from diffexp.config.schema import Config
from diffexp.config.validate import SPLIT_PROJ_OUT_FAMILIES
from diffexp.environment import environment_tags


def run_name(cfg: Config) -> str:
    """Readable name from the group choices, e.g. `flux1_dev · cfg_ulysses4 · layerwise0.1 · fa · compile`."""
    parts = [cfg.model.name, cfg.parallel.name]
    offload = cfg.offload.name
    if cfg.offload.dit_layerwise and cfg.offload.prefetch_size is not None:
        offload = f"{offload}{cfg.offload.prefetch_size:g}"
    if offload not in ("none", "default"):
        parts.append(offload)
    if cfg.attention.backend:
        parts.append(cfg.attention.backend)
    if cfg.compile.enabled:
        parts.append("compile")
    if cfg.kernels.impl != "torch":
        extras = [name for name in _kernel_options_that_apply(cfg) if getattr(cfg.kernels, name)]
        parts.append("+".join([f"kernels={cfg.kernels.impl}", *extras]))
    if cfg.engine.name != "sglang" and cfg.model.weights != "tiny":
        parts.append(cfg.engine.name)
    if cfg.profile.mode != "off":
        parts.append(f"profile={cfg.profile.mode}")
    return " · ".join(parts)


def _kernel_options_that_apply(cfg: Config) -> tuple[str, ...]:
    # Outside its families split_proj_out is on in the config and changes nothing.
    return ("gelu_epilogue", "split_proj_out") if cfg.model.family in SPLIT_PROJ_OUT_FAMILIES else ("gelu_epilogue",)


def run_tags(cfg: Config) -> dict[str, str]:
    return {
        **environment_tags(),
        **cfg.tracking.tags,
        names.ENGINE: cfg.engine.name,
        names.MODEL: cfg.model.name,
        names.WEIGHTS: cfg.model.weights,
        # Images from random weights are noise by construction: never mistake them for real output.
        names.WEIGHTS_RANDOM: str(cfg.model.weights != "pretrained").lower(),
        **({names.SWEEP: cfg.sweep} if cfg.sweep else {}),
    }
