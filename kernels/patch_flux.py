"""The Triton kernels in diffusers' FluxTransformer2DModel (0.42.1): new forwards mirroring the originals.

Each replacement below is the original forward with its norm / modulation / residual / rotary lines swapped
for the fused ops; everything else (projections, attention dispatch, MLPs) is the original code path.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.normalization import AdaLayerNormContinuous, AdaLayerNormZero, AdaLayerNormZeroSingle
from diffusers.models.transformers.transformer_flux import (
    FluxAttnProcessor,
    FluxSingleTransformerBlock,
    FluxTransformer2DModel,
    FluxTransformerBlock,
    _get_qkv_projections,
)

from kernels._patching import PatchLog, is_plain_layer_norm, is_rms_norm, override_forward, rms_eps, swap_processor
from kernels.gated_residual import gated_residual, gated_residual_joint, gated_residual_norm_modulate
from kernels.linear_gelu import linear_gelu_tanh
from kernels.linear_of_concat import linear_of_concat
from kernels.norm_modulate import norm_modulate, norm_modulate_joint
from kernels.patch_gelu import patch_gelu_modules, takes_epilogue
from kernels.qk_norm_rope import qk_norm_rope, qk_norm_rope_joint
from kernels.rms_norm import rms_norm


def _ada_zero_forward(self, x, timestep=None, class_labels=None, hidden_dtype=None, emb=None):
    if self.emb is not None:
        emb = self.emb(timestep, class_labels, hidden_dtype=hidden_dtype)
    emb = self.linear(self.silu(emb))
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = emb.chunk(6, dim=1)
    return norm_modulate(x, scale_msa, shift_msa, self.norm.eps), gate_msa, shift_mlp, scale_mlp, gate_mlp


def _ada_zero_single_forward(self, x, emb=None):
    emb = self.linear(self.silu(emb))
    shift_msa, scale_msa, gate_msa = emb.chunk(3, dim=1)
    return norm_modulate(x, scale_msa, shift_msa, self.norm.eps), gate_msa


def _ada_continuous_forward(self, x, conditioning_embedding):
    emb = self.linear(self.silu(conditioning_embedding).to(x.dtype))
    scale, shift = torch.chunk(emb, 2, dim=1)
    return norm_modulate(x, scale, shift, self.norm.eps)


def _double_block_forward(
    self,
    hidden_states: torch.Tensor,
    encoder_hidden_states: torch.Tensor,
    temb: torch.Tensor,
    image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
    joint_attention_kwargs: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    norm_hidden_states, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.norm1(hidden_states, emb=temb)
    norm_encoder_hidden_states, c_gate_msa, c_shift_mlp, c_scale_mlp, c_gate_mlp = self.norm1_context(
        encoder_hidden_states, emb=temb
    )
    attention_outputs = self.attn(
        hidden_states=norm_hidden_states,
        encoder_hidden_states=norm_encoder_hidden_states,
        image_rotary_emb=image_rotary_emb,
        **(joint_attention_kwargs or {}),
    )
    attn_output, context_attn_output = attention_outputs[0], attention_outputs[1]

    # residual + gate·attn, then norm2 + modulation: one pass instead of four.
    hidden_states, norm_hidden_states = gated_residual_norm_modulate(
        hidden_states, attn_output, gate_msa, scale_mlp, shift_mlp, self.norm2.eps
    )
    hidden_states = gated_residual(hidden_states, self.ff(norm_hidden_states), gate_mlp)
    if len(attention_outputs) == 3:
        hidden_states = hidden_states + attention_outputs[2]

    encoder_hidden_states, norm_encoder_hidden_states = gated_residual_norm_modulate(
        encoder_hidden_states, context_attn_output, c_gate_msa, c_scale_mlp, c_shift_mlp, self.norm2_context.eps
    )
    encoder_hidden_states = gated_residual(
        encoder_hidden_states, self.ff_context(norm_encoder_hidden_states), c_gate_mlp
    )
    if encoder_hidden_states.dtype == torch.float16:
        encoder_hidden_states = encoder_hidden_states.clip(-65504, 65504)
    return encoder_hidden_states, hidden_states


def _single_block_forward(
    self,
    hidden_states: torch.Tensor,
    encoder_hidden_states: torch.Tensor,
    temb: torch.Tensor,
    image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
    joint_attention_kwargs: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    # The block's input is torch.cat([text, image], dim=1); the norm and the residual add read the two parts
    # where they are (under torch.compile the cat would be written out once for each of them).
    text, image = encoder_hidden_states, hidden_states
    emb = self.norm.linear(self.norm.silu(temb))
    shift_msa, scale_msa, gate = emb.chunk(3, dim=1)
    norm_hidden_states = norm_modulate_joint(text, image, scale_msa, shift_msa, self.norm.norm.eps)
    if getattr(self, GELU_EPILOGUE_MARK, False):
        mlp_hidden_states = linear_gelu_tanh(norm_hidden_states, self.proj_mlp.weight, self.proj_mlp.bias)
    else:
        mlp_hidden_states = self.act_mlp(self.proj_mlp(norm_hidden_states))
    attn_output = self.attn(
        hidden_states=norm_hidden_states, image_rotary_emb=image_rotary_emb, **(joint_attention_kwargs or {})
    )
    if getattr(self, SPLIT_PROJ_OUT_MARK, False):
        projected = linear_of_concat([attn_output, mlp_hidden_states], self.proj_out)
    else:
        projected = self.proj_out(torch.cat([attn_output, mlp_hidden_states], dim=2))
    hidden_states = gated_residual_joint(text, image, projected, gate)
    if hidden_states.dtype == torch.float16:
        hidden_states = hidden_states.clip(-65504, 65504)
    return hidden_states[:, : text.shape[1]], hidden_states[:, text.shape[1] :]


class TritonFluxAttnProcessor(FluxAttnProcessor):
    """FluxAttnProcessor with norm_q/norm_k (and the added text ones) + RoPE done by diffexp::qk_norm_rope.

    Joint (double-block) attention normalises and rotates text and image tokens in one launch that writes the
    joint q/k, so the original `torch.cat` of q and k disappears too. (Writing each part into slices of one
    buffer would do the same in eager mode, but under torch.compile functionalisation turns those in-place
    writes into copies of the slices and of the whole buffer: three extra passes over q and k.)
    """

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None):
        query, key, value, encoder_query, encoder_key, encoder_value = _get_qkv_projections(
            attn, hidden_states, encoder_hidden_states
        )
        query = query.unflatten(-1, (-1, attn.head_dim))
        key = key.unflatten(-1, (-1, attn.head_dim))
        value = value.unflatten(-1, (-1, attn.head_dim))
        eps = rms_eps(attn.norm_q, query.dtype)
        joint = attn.added_kv_proj_dim is not None
        if joint:
            encoder_query = encoder_query.unflatten(-1, (-1, attn.head_dim))
            encoder_key = encoder_key.unflatten(-1, (-1, attn.head_dim))
            encoder_value = encoder_value.unflatten(-1, (-1, attn.head_dim))
            added_eps = rms_eps(attn.norm_added_q, query.dtype)

        if image_rotary_emb is None:
            query = rms_norm(query, attn.norm_q.weight, eps)
            key = rms_norm(key, attn.norm_k.weight, eps)
            if joint:
                query = torch.cat([rms_norm(encoder_query, attn.norm_added_q.weight, added_eps), query], dim=1)
                key = torch.cat([rms_norm(encoder_key, attn.norm_added_k.weight, added_eps), key], dim=1)
        elif joint:
            query, key = qk_norm_rope_joint(
                encoder_query, encoder_key, attn.norm_added_q.weight, attn.norm_added_k.weight, added_eps,
                query, key, attn.norm_q.weight, attn.norm_k.weight, eps, *image_rotary_emb,
            )  # fmt: skip
        else:
            query, key = qk_norm_rope(query, key, attn.norm_q.weight, attn.norm_k.weight, *image_rotary_emb, eps)
        if joint:
            value = torch.cat([encoder_value, value], dim=1)

        hidden_states = dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )
        hidden_states = hidden_states.flatten(2, 3)
        hidden_states = hidden_states.to(query.dtype)

        if encoder_hidden_states is not None:
            encoder_hidden_states, hidden_states = hidden_states.split_with_sizes(
                [encoder_hidden_states.shape[1], hidden_states.shape[1] - encoder_hidden_states.shape[1]], dim=1
            )
            hidden_states = attn.to_out[0](hidden_states.contiguous())
            hidden_states = attn.to_out[1](hidden_states)
            encoder_hidden_states = attn.to_add_out(encoder_hidden_states.contiguous())
            return hidden_states, encoder_hidden_states
        return hidden_states


def _patch_attention(name: str, attn: torch.nn.Module, log: PatchLog) -> None:
    joint = attn.added_kv_proj_dim is not None
    norms = [attn.norm_q, attn.norm_k] + ([attn.norm_added_q, attn.norm_added_k] if joint else [])
    if type(attn.processor) is not FluxAttnProcessor or not all(is_rms_norm(n) for n in norms):
        return  # IP-adapter or custom processors keep their own code.
    if attn.norm_q.eps != attn.norm_k.eps or (joint and attn.norm_added_q.eps != attn.norm_added_k.eps):
        return  # one eps per launch
    what = "FluxAttnProcessor -> TritonFluxAttnProcessor (diffexp::qk_norm_rope[_joint])"
    swap_processor(name, attn, TritonFluxAttnProcessor(), log, what)


# Set on a single block whose (patched) forward runs proj_mlp + act_mlp as diffexp::linear_gelu_tanh.
GELU_EPILOGUE_MARK = "_diffexp_gelu_epilogue"
# Set on a single block whose (patched) forward runs proj_out as one GEMM per part of its input, without the cat.
SPLIT_PROJ_OUT_MARK = "_diffexp_split_proj_out"


def patch_flux(model: FluxTransformer2DModel, gelu_epilogue: bool = False, split_proj_out: bool = False) -> list[str]:
    """Swap the kernels into every FLUX block; returns the grouped patch log. `gelu_epilogue`: also run every
    MLP up-projection + tanh GELU as one cuBLASLt call (kernels/linear_gelu.py). `split_proj_out`: the single
    blocks' proj_out as a GEMM per part of torch.cat([attn, mlp]), the cat never written
    (kernels/linear_of_concat.py)."""
    log = PatchLog()
    for name, module in model.named_modules():
        if isinstance(module, AdaLayerNormZero) and is_plain_layer_norm(module.norm):
            if override_forward(module, _ada_zero_forward):
                log.add(name, "AdaLayerNormZero.forward -> diffexp::norm_modulate")
        elif isinstance(module, AdaLayerNormZeroSingle) and is_plain_layer_norm(module.norm):
            if override_forward(module, _ada_zero_single_forward):
                log.add(name, "AdaLayerNormZeroSingle.forward -> diffexp::norm_modulate")
        elif isinstance(module, AdaLayerNormContinuous) and is_plain_layer_norm(module.norm):
            if override_forward(module, _ada_continuous_forward):
                log.add(name, "AdaLayerNormContinuous.forward -> diffexp::norm_modulate")
        elif isinstance(module, FluxTransformerBlock):
            if is_plain_layer_norm(module.norm2) and is_plain_layer_norm(module.norm2_context):
                if override_forward(module, _double_block_forward):
                    log.add(
                        name, "FluxTransformerBlock.forward -> diffexp::gated_residual_norm_modulate, gated_residual"
                    )
            _patch_attention(f"{name}.attn", module.attn, log)
        elif isinstance(module, FluxSingleTransformerBlock):
            if isinstance(module.norm, AdaLayerNormZeroSingle) and is_plain_layer_norm(module.norm.norm):
                if override_forward(module, _single_block_forward):
                    log.add(
                        name, "FluxSingleTransformerBlock.forward -> diffexp::norm_modulate_joint, gated_residual_joint"
                    )
                    if split_proj_out:
                        setattr(module, SPLIT_PROJ_OUT_MARK, True)
                        log.add(f"{name}.proj_out", "proj_out(cat([attn, mlp])) -> a GEMM per part, no cat")
                if gelu_epilogue and takes_epilogue(module.proj_mlp, module.act_mlp):
                    setattr(module, GELU_EPILOGUE_MARK, True)
                    log.add(
                        f"{name}.proj_mlp", "proj_mlp + act_mlp -> diffexp::linear_gelu_tanh (cuBLASLt GELU epilogue)"
                    )
            _patch_attention(f"{name}.attn", module.attn, log)
    if gelu_epilogue:
        patch_gelu_modules(model, log)
    return log.lines()
