"""One denoise step's FLOPs on the real tiny FLUX / Wan pipelines (CPU) and the full-size FLUX.1-dev DiT (meta
device), against counts derived by hand from the architecture files and the run's shapes."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from floor_helpers import captured
from torch.utils.flop_counter import FlopCounterMode

from diffexp.floor.capture import count_step
from diffexp.floor.shapes import ATTENTION, GEMM, AttentionShape, ConvShape, GemmShape
from diffexp.models.arch import load_arch

TIMESTEP_CHANNELS = 256  # diffusers' Timesteps(num_channels=256) in FLUX's time / guidance embedders


def flux_gemms(t: dict, s_img: int, s_txt: int) -> Counter:
    """(M, N, K) → calls for one FluxTransformer2DModel forward (batch 1), from its config."""
    d = t["num_attention_heads"] * t["attention_head_dim"]
    mlp = 4 * d  # mlp_ratio 4.0 in both block types
    s = s_img + s_txt
    out = t["patch_size"] ** 2 * t["in_channels"]  # out_channels defaults to in_channels
    g = Counter()
    # Embedders: image tokens, text tokens, timestep (+ guidance) and pooled text.
    g[(s_img, d, t["in_channels"])] += 1
    g[(s_txt, d, t["joint_attention_dim"])] += 1
    embedders = 2 if t["guidance_embeds"] else 1
    g[(1, d, TIMESTEP_CHANNELS)] += embedders
    g[(1, d, d)] += embedders + 1  # linear_2 of each, and of the pooled-text projection
    g[(1, d, t["pooled_projection_dim"])] += 1
    for _ in range(t["num_layers"]):  # double-stream blocks: image and text each have their own weights
        g[(1, 6 * d, d)] += 2  # AdaLayerNormZero of each stream
        for tokens in (s_img, s_txt):
            g[(tokens, d, d)] += 4  # q, k, v, out
            g[(tokens, mlp, d)] += 1
            g[(tokens, d, mlp)] += 1
    for _ in range(t["num_single_layers"]):  # single-stream blocks over the joint sequence
        g[(1, 3 * d, d)] += 1
        g[(s, d, d)] += 3  # q, k, v (no out projection: proj_out takes attention and MLP together)
        g[(s, mlp, d)] += 1
        g[(s, d, d + mlp)] += 1
    g[(1, 2 * d, d)] += 1  # AdaLayerNormContinuous
    g[(s_img, out, d)] += 1
    return g


def flux_attention(t: dict, s_img: int, s_txt: int) -> Counter:
    s = s_img + s_txt
    shape = (1, t["num_attention_heads"], s, s, t["attention_head_dim"])
    return Counter({shape: t["num_layers"] + t["num_single_layers"]})


def flux_tokens(arch: dict, width: int, height: int, text_tokens: int) -> tuple[int, int]:
    # The VAE downsamples by 2^(levels - 1), the pipeline packs 2×2 latent patches into one token.
    vae = 2 ** (len(arch["components"]["vae"]["config"]["block_out_channels"]) - 1)
    return (height // vae // 2) * (width // vae // 2), text_tokens


def wan_gemms(t: dict, tokens: int, s_txt: int) -> Counter:
    d = t["num_attention_heads"] * t["attention_head_dim"]
    patch = t["patch_size"][0] * t["patch_size"][1] * t["patch_size"][2]
    g = Counter()
    g[(1, d, t["freq_dim"])] += 1  # time embedder
    g[(1, d, d)] += 1
    g[(1, 6 * d, d)] += 1  # time projection to the six modulation vectors
    g[(s_txt, d, t["text_dim"])] += 1  # text embedder
    g[(s_txt, d, d)] += 1
    for _ in range(t["num_layers"]):
        g[(tokens, d, d)] += 4 + 2  # self-attention q, k, v, out; cross-attention q, out
        g[(s_txt, d, d)] += 2  # cross-attention k, v on the text
        g[(tokens, t["ffn_dim"], d)] += 1
        g[(tokens, d, t["ffn_dim"])] += 1
    g[(tokens, t["out_channels"] * patch, d)] += 1
    return g


def gemm_counts(counts) -> Counter:
    found = Counter()
    for shape, n in counts.of(GEMM).items():
        if isinstance(shape, GemmShape):
            assert shape.bias and shape.batch == 1, shape  # every projection of these DiTs is an nn.Linear
            found[(shape.m, shape.n, shape.k)] += n
    return found


def attention_counts(counts) -> Counter:
    return Counter({(s.batch, s.heads, s.q_len, s.kv_len, s.head_dim): n for s, n in counts.of(ATTENTION).items()})


def test_tiny_flux_step(tiny_flux_step):
    cfg, step = tiny_flux_step
    t = load_arch("tiny_flux")["components"]["transformer"]["config"]
    s = cfg.model.sampling
    s_img, s_txt = flux_tokens(load_arch("tiny_flux"), s.width, s.height, cfg.model.call_kwargs["max_sequence_length"])
    counts = count_step(step)
    assert counts.forwards == 1  # FLUX.1 is guidance-distilled: one call a step
    assert gemm_counts(counts) == flux_gemms(t, s_img, s_txt)
    assert attention_counts(counts) == flux_attention(t, s_img, s_txt)
    assert all(isinstance(sh, AttentionShape) and sh.layout == "bshd" for sh in counts.of(ATTENTION))
    # torch's own counter agrees on the matmuls (on CPU it has no formula for the fused SDPA op).
    with FlopCounterMode(display=False) as flop_counter:
        call = step.calls[0]
        step.module(call)(*call.args, **call.kwargs)
    assert counts.flops(GEMM) == flop_counter.get_total_flops()
    assert 0 < counts.memory_bytes < counts.memory_bytes_eager


def test_tiny_wan_step_counts_both_cfg_calls(tiny_wan_step):
    cfg, step = tiny_wan_step
    arch = load_arch("tiny_wan")
    t = arch["components"]["transformer"]["config"]
    vae = arch["components"]["vae"]["config"]
    s = cfg.model.sampling
    # Wan's VAE: 2^levels spatially, 2^(temporal downsamplings) in time, the first frame kept.
    spatial, temporal = 2 ** len(vae["temperal_downsample"]), 2 ** sum(vae["temperal_downsample"])
    frames = (s.num_frames - 1) // temporal + 1
    pt, ph, pw = t["patch_size"]
    tokens = (frames // pt) * (s.height // spatial // ph) * (s.width // spatial // pw)
    s_txt = cfg.model.call_kwargs["max_sequence_length"]
    heads, hd = t["num_attention_heads"], t["attention_head_dim"]

    counts = count_step(step)
    assert counts.forwards == len(step.calls) == 2  # CFG: conditional and unconditional call
    assert gemm_counts(counts) == Counter({k: 2 * n for k, n in wan_gemms(t, tokens, s_txt).items()})
    per_call = Counter(
        {(1, heads, tokens, tokens, hd): t["num_layers"], (1, heads, tokens, s_txt, hd): t["num_layers"]}
    )
    assert attention_counts(counts) == Counter({k: 2 * n for k, n in per_call.items()})
    ((conv, calls),) = [(sh, n) for sh, n in counts.of(GEMM).items() if isinstance(sh, ConvShape)]
    d = heads * hd
    assert calls == 2 and conv.weight == (d, t["in_channels"], pt, ph, pw) and conv.stride == (pt, ph, pw)
    assert conv.flops == 2 * d * tokens * t["in_channels"] * pt * ph * pw  # the patch embedding as a GEMM
    with FlopCounterMode(display=False) as flop_counter:
        for call in step.calls:
            step.module(call)(*call.args, **call.kwargs)
    assert counts.flops(GEMM) == flop_counter.get_total_flops()
    assert 0 < counts.memory_bytes < counts.memory_bytes_eager


@pytest.mark.slow
def test_flux1_dev_full_size_on_meta_matches_the_measured_counts():
    """FLUX.1-dev at 1024² (4096 image + 512 text tokens), built on the meta device: 59.5 TFLOP of matmul and
    14.9 TFLOP of attention per forward, as torch's FlopCounterMode counted them on an H200."""
    cfg, step = captured("model=flux1_dev", "model.weights=random", "engine=diffusers")
    assert step.device.type == "meta" and step.calls[0].kwargs["hidden_states"].shape == (1, 4096, 64)
    counts = count_step(step)
    assert counts.flops(GEMM) / 1e12 == pytest.approx(59.5, rel=0.01)
    assert counts.flops(ATTENTION) / 1e12 == pytest.approx(14.9, rel=0.01)
    t = load_arch("flux1_dev")["components"]["transformer"]["config"]
    assert gemm_counts(counts) == flux_gemms(t, 4096, 512)
    assert attention_counts(counts) == flux_attention(t, 4096, 512)
    assert {s.dtype for s in counts.shapes} == {str(torch.bfloat16).removeprefix("torch.")}
