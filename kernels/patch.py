"""Swap the Triton kernels into a diffusers transformer: `apply_triton_kernels(pipe.transformer)`.

Written against diffusers 0.42.1; only exact, known module types are touched, and each replacement keeps
the module's class, parameters and state-dict keys (only `forward` of that instance, or the attention
processor, changes). What gets replaced:

FluxTransformer2DModel
- `AdaLayerNormZero.forward` (transformer_blocks.*.norm1, .norm1_context), `AdaLayerNormZeroSingle.forward`
  (single_transformer_blocks.*.norm) and `AdaLayerNormContinuous.forward` (norm_out): LayerNorm + modulation
  -> diffexp::norm_modulate (the emb linear stays).
- `FluxTransformerBlock.forward`: residual + gate·attn, norm2 and modulation -> diffexp::gated_residual_norm_modulate;
  residual + gate·ff -> diffexp::gated_residual (both streams).
- `FluxSingleTransformerBlock.forward` (when its norm is a plain LayerNorm): the block input is the join of
  text and image tokens, read by diffexp::norm_modulate_joint (norm + modulation) and
  diffexp::gated_residual_joint (residual + gate·proj_out) where the two parts are, without the torch.cat.
- `FluxAttention.processor` (when it is the stock FluxAttnProcessor): norm_q/norm_k, norm_added_q/k and
  apply_rotary_emb -> diffexp::qk_norm_rope (single blocks) / qk_norm_rope_joint (double blocks: text and
  image tokens in one launch that writes the joint q/k, removing the torch.cat of q and k).

WanTransformer3DModel
- `WanTransformerBlock.forward`: norm1 + modulation -> diffexp::norm_modulate; residual + gate·attn1 fused with
  norm2 (cross_attn_norm=True: an affine LayerNorm, run as modulation with scale = weight - 1, shift = bias)
  -> diffexp::gated_residual_norm_modulate; residual + attn2 fused with norm3 + modulation -> the same op with
  no gate; residual + gate·ffn -> diffexp::gated_residual.
- `WanAttention.processor` (when it is the stock WanAttnProcessor): norm_q/norm_k (RMSNorm across heads) +
  rotary -> diffexp::qk_norm_rope in self-attention; norm_q/norm_k/norm_added_k -> diffexp::rms_norm in
  cross-attention.
- Not replaced: the model-level forward (Wan's final norm_out + modulation runs once per step).

Other DiTs (Qwen-Image, LTX-2, JoyAI): the GELU epilogue alone, in every diffusers FeedForward with the tanh GELU; a
transformer with none of those (Z-Image's and FLUX.2's SwiGLU MLPs) is refused.

With `gelu_epilogue=True` (config `kernels.gelu_epilogue=true`), also: every MLP up-projection followed by the
tanh GELU (FLUX's ff / ff_context and single-block proj_mlp + act_mlp, Wan's ffn) -> diffexp::linear_gelu_tanh,
cuBLASLt's GELU epilogue (kernels/linear_gelu.py). With `split_proj_out=True` (`kernels.split_proj_out=true`):
FLUX's single-block proj_out of torch.cat([attn, mlp]) as one GEMM per part accumulated in cuBLAS's epilogue, so
the cat (a copy once the GELU is an opaque epilogue) is never written (kernels/linear_of_concat.py). Both are off
here. The config kernels=triton turns the epilogue on, which an end-to-end A/B on an H200 decided; the split stays
off until its own A/B (bench/floor_h200.sh OUT split) is measured.

Call it before torch.compile, group offloading or cache hooks (a forward already replaced by a hook is
refused, not silently dropped); the device does not matter then (the model may still be on CPU), but the
kernels run only on CUDA tensors (or under TRITON_INTERPRET=1) and say so when called with others.
Inference only: the ops have no backward. A second call patches nothing more.
"""

from __future__ import annotations

import logging

import torch

from diffexp.errors import DiffexpError

log = logging.getLogger(__name__)

TESTED_DIFFUSERS = "0.42."


def apply_triton_kernels(
    transformer: torch.nn.Module, gelu_epilogue: bool = False, split_proj_out: bool = False
) -> list[str]:
    """Patch `transformer` in place; returns what was patched, one line per kind of module with a count.
    `gelu_epilogue`: also run each MLP up-projection + tanh GELU as one cuBLASLt call (kernels/linear_gelu.py).
    `split_proj_out`: FLUX's single-block proj_out without its input's cat (kernels/linear_of_concat.py)."""
    import diffusers
    from diffusers import FluxTransformer2DModel, WanTransformer3DModel

    if not diffusers.__version__.startswith(TESTED_DIFFUSERS):
        log.warning(
            "kernels.patch mirrors diffusers %s* forwards; this is %s: compare outputs with kernels=torch",
            TESTED_DIFFUSERS,
            diffusers.__version__,
        )
    if isinstance(transformer, FluxTransformer2DModel):
        from kernels.patch_flux import patch_flux

        patched = patch_flux(transformer, gelu_epilogue, split_proj_out)
    elif isinstance(transformer, WanTransformer3DModel):
        from kernels.patch_wan import patch_wan

        patched = patch_wan(transformer, gelu_epilogue)
    else:
        patched = _patch_gelu_only(transformer, gelu_epilogue)
    if split_proj_out and not isinstance(transformer, FluxTransformer2DModel):
        name = type(transformer).__name__
        log.info("kernels.split_proj_out: %s has no proj_out of a cat (FLUX's single blocks), nothing split", name)
    for line in patched:
        log.info("triton kernels: %s", line)
    return patched


def _patch_gelu_only(transformer: torch.nn.Module, gelu_epilogue: bool) -> list[str]:
    """Other DiTs: only the GELU epilogue, in every diffusers FeedForward with the tanh GELU (Qwen-Image's and
    JoyAI's img_mlp / txt_mlp, LTX-2's ff / audio_ff). Their norms, modulations and rotary forms are not the ops
    of kernels/ (Qwen-Image rotates with complex numbers, Z-Image and FLUX.2 have SwiGLU MLPs)."""
    patched = []
    if gelu_epilogue:
        from kernels._patching import PatchLog
        from kernels.patch_gelu import patch_gelu_modules

        epilogues = PatchLog()
        patch_gelu_modules(transformer, epilogues)
        patched = epilogues.lines()
    if not patched:
        raise DiffexpError(
            f"kernels=triton has no patch for {type(transformer).__name__}: the fused ops cover "
            "FluxTransformer2DModel and WanTransformer3DModel, and the GELU epilogue (kernels.gelu_epilogue=true) "
            "any diffusers FeedForward with the tanh GELU, which this model has none of (use kernels=torch)"
        )
    return patched
