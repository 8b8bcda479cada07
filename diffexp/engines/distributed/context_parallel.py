"""Sequence parallelism through diffusers' own context parallelism: Ulysses and ring attention over a rank group."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Optional

import torch

from diffexp.engines.distributed.layout import Layout
from diffexp.errors import DiffexpError

log = logging.getLogger(__name__)

# Ring attention merges the per-chunk results by their softmax log-sum-exp. Of the attention backends the
# in-process engine offers, these return it on CUDA; diffusers' native SDPA backend (the default) does not,
# and no backend does on CPU.
RING_ATTENTION = ("fa", "sage_attn")


def check_ring_attention(layout: Layout, attention_backend: Optional[str], device: torch.device) -> None:
    """Refuse ring layouts that diffusers cannot run, before any rank starts."""
    if layout.ring_degree == 1:
        return
    if device.type != "cuda":
        raise DiffexpError(
            f"parallel.ring_degree={layout.ring_degree}: ring attention needs CUDA; on {device} no diffusers attention "
            "backend returns the softmax log-sum-exp that ring attention merges chunks with (Ulysses runs on CPU)"
        )
    if attention_backend not in RING_ATTENTION:
        raise DiffexpError(
            f"parallel.ring_degree={layout.ring_degree} with attention.backend={attention_backend or 'default'}: "
            f"ring attention needs a backend that returns the softmax log-sum-exp: attention={' or '.join(RING_ATTENTION)}"
        )


def enable(transformer: torch.nn.Module, layout: Layout, mesh, attention_backend: Optional[str]) -> None:
    """Split the transformer's sequence over the (ring, ulysses) part of `mesh` with its own `_cp_plan`."""
    import diffusers
    from diffusers import ContextParallelConfig

    name = type(transformer).__name__
    degrees = f"parallel.ulysses_degree={layout.ulysses_degree}, parallel.ring_degree={layout.ring_degree}"
    if getattr(transformer, "_cp_plan", None) is None:
        raise DiffexpError(
            f"{degrees}: {name} has no context-parallel plan (_cp_plan) in diffusers {diffusers.__version__}, so its "
            "sequence cannot be split across ranks; use a CFG-parallel or single layout, or engine=sglang"
        )
    heads = transformer.config.get("num_attention_heads")
    if heads and heads % layout.ulysses_degree:
        raise DiffexpError(f"{degrees}: {name} has {heads} attention heads, which Ulysses must split evenly")
    config = ContextParallelConfig(
        ulysses_degree=layout.ulysses_degree, ring_degree=layout.ring_degree, mesh=mesh["ring", "ulysses"]
    )
    try:
        with _accelerator_counted_on_cpu():
            transformer.enable_parallelism(config=config)
    except ValueError as exc:  # e.g. an attention backend without context-parallel support
        raise DiffexpError(f"{degrees} with attention.backend={attention_backend or 'default'}: {exc}") from exc
    log.info("context parallel on %s: %s", name, layout.describe())


@contextmanager
def _accelerator_counted_on_cpu():
    """diffusers 0.42.1 picks a rank's device as `rank % torch.accelerator.device_count()`, which divides by zero
    on a machine without an accelerator. That device is only recorded, never used, so count one meanwhile."""
    if torch.accelerator.device_count() > 0:
        yield
        return
    original = torch.accelerator.device_count
    torch.accelerator.device_count = lambda: 1
    try:
        yield
    finally:
        torch.accelerator.device_count = original
