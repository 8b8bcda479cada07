"""What the parallel in-process engine accepts and refuses, checked without starting ranks."""

from __future__ import annotations

import pytest
import torch

from diffexp.config import compose, to_config
from diffexp.engines.distributed import cfg_parallel, context_parallel
from diffexp.engines.distributed.layout import Layout, layout_of
from diffexp.errors import DiffexpError


@pytest.mark.parametrize(
    "option, shape",
    [
        ("single", (1, 1, 1)),
        ("gpus2", (1, 1, 2)),  # degrees left unset: Ulysses takes the GPUs, as in SGLang
        ("ulysses2", (1, 1, 2)),
        ("ulysses8", (1, 1, 8)),
        ("ring2", (1, 2, 1)),
        ("usp", (1, 2, 2)),
        ("cfg2", (2, 1, 1)),
        ("cfg_ulysses2", (2, 1, 2)),
        ("cfg_ulysses4", (2, 1, 4)),
    ],
)
def test_every_parallel_option_maps_to_a_rank_mesh(option, shape):
    cfg = to_config(compose(["model=wan22_t2v", f"parallel={option}"]))
    layout = layout_of(cfg.parallel)
    assert layout.shape == shape and layout.world_size == cfg.parallel.num_gpus


def test_tensor_parallelism_is_left_to_sglang():
    cfg = to_config(compose(["parallel=gpus2", "parallel.tp_degree=2", "parallel.num_gpus=2"]))
    with pytest.raises(
        DiffexpError, match="parallel.tp_degree=2: the in-process engine does not do tensor parallelism"
    ):
        layout_of(cfg.parallel)


def test_ring_attention_needs_cuda_and_a_backend_that_returns_the_log_sum_exp():
    ring = Layout(1, 2, 1)
    with pytest.raises(DiffexpError, match="parallel.ring_degree=2: ring attention needs CUDA"):
        context_parallel.check_ring_attention(ring, "fa", torch.device("cpu"))
    with pytest.raises(DiffexpError, match="attention.backend=default: .* attention=fa or sage_attn"):
        context_parallel.check_ring_attention(ring, None, torch.device("cuda", 0))
    context_parallel.check_ring_attention(ring, "fa", torch.device("cuda", 0))
    context_parallel.check_ring_attention(Layout(1, 1, 2), None, torch.device("cpu"))


def test_a_transformer_without_a_context_parallel_plan_is_refused_by_name():
    from diffusers import SD3Transformer2DModel

    transformer = SD3Transformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=16,
        caption_projection_dim=16,
        pooled_projection_dim=16,
        out_channels=4,
    )
    with pytest.raises(
        DiffexpError, match=r"parallel.ulysses_degree=2, .*: SD3Transformer2DModel has no context-parallel plan"
    ):
        context_parallel.enable(transformer, Layout(1, 1, 2), mesh=None, attention_backend=None)


def tiny_pipeline(name: str, *overrides: str):
    from diffexp.engines.diffusers.call import call_kwargs
    from diffexp.models import load_pipeline

    cfg = to_config(compose([f"model={name}", *overrides]))
    pipe = load_pipeline(cfg.model, torch.device("cpu"))
    return pipe, call_kwargs(cfg, pipe)


def test_ulysses_must_split_the_heads_evenly():
    pipe, _ = tiny_pipeline("tiny_flux")  # 2 heads
    with pytest.raises(
        DiffexpError, match="parallel.ulysses_degree=4, .*: FluxTransformer2DModel has 2 attention heads"
    ):
        context_parallel.enable(pipe.transformer, Layout(1, 1, 4), mesh=None, attention_backend=None)


def test_cfg_parallel_needs_the_pipeline_to_make_its_unconditional_call():
    # FLUX.1 is guidance-distilled: its guidance_scale is an embedding, true CFG is a separate switch.
    pipe, kwargs = tiny_pipeline("tiny_flux")
    with pytest.raises(
        DiffexpError, match=r"FluxPipeline runs an unconditional branch only with true CFG.*true_cfg_scale=1.0"
    ):
        cfg_parallel.check_runs_both_branches(pipe, kwargs)
    pipe, kwargs = tiny_pipeline(
        "tiny_flux", "+model.call_kwargs.true_cfg_scale=4.0", "model.sampling.negative_prompt=blurry"
    )
    cfg_parallel.check_runs_both_branches(pipe, kwargs)

    pipe, kwargs = tiny_pipeline("tiny_wan", "model.sampling.guidance_scale=1.0")
    with pytest.raises(DiffexpError, match="guidance_scale=1.0: WanPipeline runs no unconditional branch"):
        cfg_parallel.check_runs_both_branches(pipe, kwargs)
