"""The tuning's anchors as points: the space's fixed configurations (the guide's recipe for the situation) and the
placement SGLang's `--performance-mode auto` would pick for this budget (diffexp.tune.auto_mode)."""

from __future__ import annotations

import logging
from typing import Optional

from diffexp.config.schema import Config
from diffexp.tune import auto_mode
from diffexp.tune.config import IMAGE_TASKS, TuneConfig
from diffexp.tune.search import Machine
from diffexp.tune.space import Point, as_choice

log = logging.getLogger(__name__)

SGLANG_AUTO = "sglang_auto"
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


def declared(tcfg: TuneConfig) -> dict[str, Point]:
    out = {}
    for name, value in tcfg.anchors.items():
        choice = as_choice(value)
        out[name] = Point({"anchor": name}, list(choice.overrides), dict(choice.env), complexity=len(choice.overrides))
    return out


def model_sizes_gib(cfg: Config) -> Optional[tuple[float, float]]:
    """(DiT, all weights) in GiB from the model's architecture, counted on the meta device (no memory)."""
    if not cfg.model.arch:
        return None
    from diffexp.models.arch import build_empty_model, is_model, load_arch
    from diffexp.models.materialize import parameter_count

    per_param = DTYPE_BYTES.get(cfg.model.dtype, 2)
    dit = total = 0.0
    for name, spec in load_arch(cfg.model.arch)["components"].items():
        if not is_model(spec):
            continue
        gib = parameter_count(build_empty_model(spec)) * per_param / 2**30
        total += gib
        if name.startswith("transformer"):
            dit += gib
    return dit, total


def sglang_auto(cfg: Config, tcfg: TuneConfig, box: Machine) -> Optional[tuple[Point, auto_mode.Placement]]:
    """SGLang's auto placement as if the budget were the free memory of this machine's GPU."""
    if not (tcfg.sglang_auto_anchor and box.cuda and tcfg.vram_gib):
        return None
    import torch

    sizes = model_sizes_gib(cfg)
    if sizes is None:
        log.warning("no architecture for %s: the SGLang auto anchor needs the model's sizes; skipped", cfg.model.name)
        return None
    situation = auto_mode.Situation(
        free_gib=tcfg.vram_gib,
        total_gib=torch.cuda.get_device_properties(0).total_memory / 2**30,
        image=cfg.model.task in IMAGE_TASKS,
        dit_gib=sizes[0],
        weights_gib=sizes[1],
        num_gpus=box.num_gpus,
        uses_cfg=(cfg.model.sampling.guidance_scale or 1.0) > 1.0 and cfg.model.family != "flux",
        deployment=auto_mode.DEPLOYMENTS.get(cfg.model.family, auto_mode.Deployment()),
    )
    placement = auto_mode.auto_placement(situation)
    overrides, unexpressed = auto_mode.as_overrides(placement)
    for note in unexpressed:
        log.warning("SGLang auto anchor: %s", note)
    return Point({"anchor": SGLANG_AUTO}, overrides, complexity=len(overrides) - 1), placement
