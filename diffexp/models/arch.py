"""Build a pipeline's components from an architecture file in conf/arch/ with seeded random weights.

The same builder makes the built-in tiny models (saved once, then loaded like a checkpoint) and
full-size architectures. Every model is constructed weightless (parameters on the meta device) and
its parameters are then allocated and initialised on the run's device in the run's dtype, so a
full-size build never holds weights in host memory (latency does not depend on weight values).
"""

from __future__ import annotations

import copy
import importlib
import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import torch

from diffexp.config.arch import arch_names, arch_path, arch_spec
from diffexp.errors import DiffexpError
from diffexp.models.materialize import build_empty, materialize, parameter_count, peak_host_rss_gib
from diffexp.models.qwen_vocab import qwen_tokenizer, qwen_vl_processor
from diffexp.models.tokenizer import BOS_ID, EOS_ID, PAD_ID, byte_level_tokenizer

log = logging.getLogger(__name__)


def load_arch(name: str) -> dict[str, Any]:
    spec = arch_spec(name)
    if spec is None:
        raise DiffexpError(
            f"model.arch={name!r}: no file {arch_path(name)}; known architectures: {', '.join(arch_names())}"
        )
    return copy.deepcopy(spec)  # the builders may change theirs


def _import(dotted: str):
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _model_factory(spec: dict[str, Any]):
    cls = _import(spec["class"])
    config = dict(spec.get("config", {}))
    if "config_class" in spec:
        # Special-token ids must agree with the locally built tokenizer (CLIP pools at the EOS token);
        # an arch with a real vocabulary layout states its own ids.
        if not spec.get("own_token_ids", False):
            config.setdefault("pad_token_id", PAD_ID)
            config.setdefault("eos_token_id", EOS_ID)
            config.setdefault("bos_token_id", BOS_ID)
            config.setdefault("vocab_size", 384)
        return lambda: cls(_import(spec["config_class"])(**config))
    return lambda: cls(**config)


TOKENIZERS = ("byte_level", "qwen_bpe")


def tokenizer(spec: dict[str, Any]):
    """A `tokenizer` component: byte_level (built here, diffexp/models/tokenizer.py) or qwen_bpe (the real Qwen
    vocabulary, diffexp/models/qwen_vocab.py)."""
    kind = spec["tokenizer"]
    if kind == "qwen_bpe":
        return qwen_tokenizer(spec["model_max_length"])
    if kind == "byte_level":
        return byte_level_tokenizer(spec["model_max_length"], spec.get("template", "t5"))
    raise DiffexpError(f"tokenizer {kind!r}: allowed values are {', '.join(TOKENIZERS)}")


def is_model(spec: dict[str, Any]) -> bool:
    return "class" in spec and not spec["class"].endswith("Scheduler")


def build_empty_model(spec: dict[str, Any], dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """One component with its parameters on the meta device: costs no memory, counts like the real one."""
    previous_dtype = torch.get_default_dtype()
    try:
        # Buffers computed in __init__ get the run's dtype, as a construction in that dtype would give them.
        torch.set_default_dtype(dtype)
        return build_empty(_model_factory(spec)).eval().requires_grad_(False)
    finally:
        torch.set_default_dtype(previous_dtype)


@dataclass
class BuildStats:
    """What a random-weight build cost: wall time, the process's peak host RSS after it, sizes."""

    build_s: float
    build_host_rss_gib: float
    parameters: dict[str, int] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        return {"build_s": self.build_s, "build_host_rss_gib": self.build_host_rss_gib}


def build_components(
    arch: dict[str, Any], seed: int, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> dict[str, Any]:
    """Instantiate every component; parameters are allocated on `device` in `dtype` and seeded in place."""
    return build_components_with_stats(arch, seed, device, dtype)[0]


def build_components_with_stats(
    arch: dict[str, Any], seed: int, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[dict[str, Any], BuildStats]:
    started = time.perf_counter()
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    components: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    torch.manual_seed(seed)  # for any buffer a constructor draws at random
    for name, spec in arch["components"].items():
        if "processor" in spec:
            # Over the arch's tokenizer component (built before it): its <|image_pad|> is the encoder's image token.
            components[name] = qwen_vl_processor(spec, components.get(spec.get("tokenizer", "tokenizer")))
        elif "tokenizer" in spec:
            components[name] = tokenizer(spec)
        elif spec["class"].endswith("Scheduler"):
            components[name] = _import(spec["class"])(**spec.get("config", {}))
        else:
            model = build_empty_model(spec, dtype)
            # One seed per component, from its name: a component's weights do not change when another
            # component is added to or removed from the architecture.
            components[name] = materialize(model, device, dtype, seed=seed + zlib.crc32(name.encode()))
            sizes[name] = parameter_count(model)
            log.debug("built %s: %.1fM parameters", name, sizes[name] / 1e6)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    stats = BuildStats(time.perf_counter() - started, peak_host_rss_gib(), sizes)
    return components, stats


def build_pipeline(
    arch_name: str, seed: int, device: str | torch.device, dtype: torch.dtype, pipeline: str | None = None
):
    """The arch's pipeline with seeded random weights; `pipe.build_stats` says what the build cost.

    `pipeline`: the model's own pipeline class where it names another over the same components (the task's:
    Wan2.2-TI2V-5B's checkpoint is a WanPipeline, its TI2V recipe runs WanImageToVideoPipeline), as loading a
    checkpoint with the model's class does."""
    arch = load_arch(arch_name)
    pipeline_cls = _import(f"diffusers.{pipeline or arch['pipeline']}")
    components, stats = build_components_with_stats(arch, seed, device, dtype)
    pipe = pipeline_cls(**components, **arch.get("pipeline_kwargs", {}))
    pipe.build_stats = stats
    log.info(
        "built %s in %.1f s (peak host RSS %.2f GiB): %s",
        arch_name,
        stats.build_s,
        stats.build_host_rss_gib,
        ", ".join(f"{k} {v / 1e9:.2f}B" for k, v in stats.parameters.items()),
    )
    return pipe
