"""Weightless module construction and seeded in-place initialisation on the target device.

Modules are built with their parameters on the meta device (no memory anywhere), then every parameter
is allocated on the run's device in the run's dtype and initialised there from one seeded generator.
Buffers are built for real by the module's own __init__ (rotary tables, position ids: small, and only
their constructor knows how to compute them) and moved to the device unchanged.
"""

from __future__ import annotations

import math
import resource
import sys
from collections.abc import Callable

import torch
from accelerate import init_empty_weights

# Fallback standard deviation for parameters no torch module knows how to initialise (modulation
# tables, learnable registers, ...): the value transformers uses as its initializer_range.
DEFAULT_STD = 0.02


def build_empty(factory: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Run `factory` with parameters created on the meta device; buffers stay real (on the CPU)."""
    with init_empty_weights(include_buffers=False):
        module = factory()
    # The meta patch re-creates every parameter it registers, which unties shared ones (a causal LM's
    # lm_head and input embeddings): tie them again now that registration is ordinary.
    if hasattr(module, "tie_weights"):
        module.tie_weights()
    return module


def parameter_count(module: torch.nn.Module) -> int:
    """Distinct parameters (a tied embedding counts once), meta or real."""
    return sum(p.numel() for p in module.parameters())


def materialize(module: torch.nn.Module, device: torch.device, dtype: torch.dtype, seed: int) -> torch.nn.Module:
    """Allocate every meta parameter on `device` in `dtype` and initialise it, deterministically from `seed`.

    Standard torch layers use their own reset_parameters (what a fresh construction would give); any
    other parameter gets ones (norm scales), zeros (biases) or N(0, 0.02). Tied parameters stay tied.
    """
    if torch.device(device).type == "meta":
        # Counting (the floor, the footprint check) needs shapes only: leave the parameters empty, buffers too.
        return module.to("meta")
    generator = torch.Generator(device).manual_seed(seed)
    replaced: dict[int, torch.nn.Parameter] = {}
    for module_name, sub in module.named_modules():
        fresh = []
        for name, param in list(sub._parameters.items()):
            if param is None:
                continue
            if id(param) not in replaced:
                data = torch.empty(
                    param.shape, device=device, dtype=dtype if param.is_floating_point() else param.dtype
                )
                replaced[id(param)] = torch.nn.Parameter(data, requires_grad=False)
                fresh.append(name)
            sub._parameters[name] = replaced[id(param)]
        if fresh:
            _init_parameters(sub, module_name, fresh, generator)
        for name, buf in list(sub._buffers.items()):
            if buf is not None:
                sub._buffers[name] = buf.to(device)
    return module


@torch.no_grad()
def _init_parameters(sub: torch.nn.Module, module_name: str, names: list[str], generator: torch.Generator) -> None:
    if isinstance(sub, torch.nn.Linear | torch.nn.modules.conv._ConvNd):
        # kaiming_uniform(a=sqrt(5)) as reset_parameters does, from our generator instead of the global one.
        fan_in = sub.weight[0].numel()
        bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
        for name in names:
            getattr(sub, name).uniform_(-bound, bound, generator=generator)
        return
    if isinstance(sub, torch.nn.Embedding):
        for name in names:
            getattr(sub, name).normal_(0.0, DEFAULT_STD, generator=generator)
        return
    is_norm = "norm" in type(sub).__name__.lower() or "norm" in module_name.rsplit(".", 1)[-1].lower()
    for name in names:
        param = getattr(sub, name)
        if not param.is_floating_point():
            param.zero_()
        elif "bias" in name or "shift" in name:
            param.zero_()
        elif is_norm or name in ("gamma", "scale", "g"):
            param.fill_(1.0)
        else:
            param.normal_(0.0, DEFAULT_STD, generator=generator)


def peak_host_rss_gib() -> float:
    """The process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**30 if sys.platform == "darwin" else 2**20)
