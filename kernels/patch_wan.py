"""The Triton kernels in diffusers' WanTransformer3DModel (0.42.1): new forwards mirroring the originals.

Each replacement is the original forward with its norm / modulation / residual / rotary lines swapped for
the fused ops; projections, attention dispatch and the FFN are the original code path.
"""

from __future__ import annotations

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_wan import (
    WanAttnProcessor,
    WanTransformer3DModel,
    WanTransformerBlock,
    _get_added_kv_projections,
    _get_qkv_projections,
)
from torch import nn

from kernels._patching import (
    PatchLog,
    is_affine_layer_norm,
    is_plain_layer_norm,
    is_rms_norm,
    override_forward,
    rms_eps,
    swap_processor,
)
from kernels.gated_residual import gated_residual, gated_residual_norm_modulate
from kernels.norm_modulate import norm_modulate
from kernels.patch_gelu import patch_gelu_modules
from kernels.qk_norm_rope import qk_norm_rope
from kernels.rms_norm import rms_norm


def _block_forward(
    self, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor, temb: torch.Tensor, rotary_emb
) -> torch.Tensor:
    if temb.ndim == 4:  # [B, S, 6, D]: per-token modulation (Wan 2.2 TI2V)
        shift_msa, scale_msa, gate_msa, c_shift_msa, c_scale_msa, c_gate_msa = (
            self.scale_shift_table.unsqueeze(0) + temb.float()
        ).chunk(6, dim=2)
        shift_msa, scale_msa, gate_msa = shift_msa.squeeze(2), scale_msa.squeeze(2), gate_msa.squeeze(2)
        c_shift_msa, c_scale_msa, c_gate_msa = c_shift_msa.squeeze(2), c_scale_msa.squeeze(2), c_gate_msa.squeeze(2)
    else:  # [B, 6, D]
        shift_msa, scale_msa, gate_msa, c_shift_msa, c_scale_msa, c_gate_msa = (
            self.scale_shift_table + temb.float()
        ).chunk(6, dim=1)

    # 1. Self-attention
    norm_hidden_states = norm_modulate(hidden_states, scale_msa, shift_msa, self.norm1.eps)
    attn_output = self.attn1(norm_hidden_states, None, None, rotary_emb)

    # 2. Cross-attention. An affine LayerNorm is a modulation with scale = weight - 1 and shift = bias.
    if isinstance(self.norm2, nn.Identity):
        hidden_states = gated_residual(hidden_states, attn_output, gate_msa)
        norm_hidden_states = hidden_states
    else:
        weight = self.norm2.weight.float()
        bias = self.norm2.bias.float() if self.norm2.bias is not None else torch.zeros_like(weight)
        hidden_states, norm_hidden_states = gated_residual_norm_modulate(
            hidden_states, attn_output, gate_msa, (weight - 1)[None], bias[None], self.norm2.eps
        )
    attn_output = self.attn2(norm_hidden_states, encoder_hidden_states, None, None)

    # 3. Feed-forward: plain residual add fused with norm3 + modulation.
    hidden_states, norm_hidden_states = gated_residual_norm_modulate(
        hidden_states, attn_output, None, c_scale_msa, c_shift_msa, self.norm3.eps
    )
    ff_output = self.ffn(norm_hidden_states)
    return gated_residual(hidden_states, ff_output, c_gate_msa)


class TritonWanAttnProcessor(WanAttnProcessor):
    """WanAttnProcessor with norm_q/norm_k (RMSNorm across heads) + RoPE done by diffexp::qk_norm_rope,
    and the cross-attention / image-key norms by diffexp::rms_norm."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        encoder_hidden_states_img = None
        if attn.add_k_proj is not None:
            # 512 is the context length of the text encoder, hardcoded for now (as in diffusers)
            image_context_length = encoder_hidden_states.shape[1] - 512
            encoder_hidden_states_img = encoder_hidden_states[:, :image_context_length]
            encoder_hidden_states = encoder_hidden_states[:, image_context_length:]

        query, key, value = _get_qkv_projections(attn, hidden_states, encoder_hidden_states)
        eps = rms_eps(attn.norm_q, query.dtype)
        if rotary_emb is not None:
            query, key = qk_norm_rope(
                query.unflatten(2, (attn.heads, -1)), key.unflatten(2, (attn.heads, -1)),
                attn.norm_q.weight, attn.norm_k.weight, rotary_emb[0], rotary_emb[1], eps,
            )  # fmt: skip
        else:
            query = rms_norm(query, attn.norm_q.weight, eps).unflatten(2, (attn.heads, -1))
            key = rms_norm(key, attn.norm_k.weight, eps).unflatten(2, (attn.heads, -1))
        value = value.unflatten(2, (attn.heads, -1))

        hidden_states_img = None
        if encoder_hidden_states_img is not None:
            key_img, value_img = _get_added_kv_projections(attn, encoder_hidden_states_img)
            key_img = rms_norm(key_img, attn.norm_added_k.weight, rms_eps(attn.norm_added_k, key_img.dtype))
            key_img = key_img.unflatten(2, (attn.heads, -1))
            value_img = value_img.unflatten(2, (attn.heads, -1))
            hidden_states_img = dispatch_attention_fn(
                query,
                key_img,
                value_img,
                attn_mask=None,
                dropout_p=0.0,
                is_causal=False,
                backend=self._attention_backend,
                parallel_config=None,
            )
            hidden_states_img = hidden_states_img.flatten(2, 3)
            hidden_states_img = hidden_states_img.type_as(query)

        hidden_states = dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            dropout_p=0.0,
            is_causal=False,
            backend=self._attention_backend,
            parallel_config=(self._parallel_config if encoder_hidden_states is None else None),
        )
        hidden_states = hidden_states.flatten(2, 3)
        hidden_states = hidden_states.type_as(query)
        if hidden_states_img is not None:
            hidden_states = hidden_states + hidden_states_img
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        return hidden_states


def _patch_attention(name: str, attn: nn.Module, log: PatchLog) -> None:
    norms = [attn.norm_q, attn.norm_k] + ([attn.norm_added_k] if attn.add_k_proj is not None else [])
    if type(attn.processor) is not WanAttnProcessor or not all(is_rms_norm(n) for n in norms):
        return
    if attn.norm_q.eps != attn.norm_k.eps:
        return  # one eps per launch
    what = "WanAttnProcessor -> TritonWanAttnProcessor (diffexp::qk_norm_rope, rms_norm)"
    swap_processor(name, attn, TritonWanAttnProcessor(), log, what)


def patch_wan(model: WanTransformer3DModel, gelu_epilogue: bool = False) -> list[str]:
    """Swap the kernels into every Wan block; returns the grouped patch log. `gelu_epilogue`: also run the FFN's
    up-projection + tanh GELU as one cuBLASLt call (kernels/linear_gelu.py)."""
    log = PatchLog()
    for name, module in model.named_modules():
        if not isinstance(module, WanTransformerBlock):
            continue
        norm2_ok = isinstance(module.norm2, nn.Identity) or is_affine_layer_norm(module.norm2)
        if is_plain_layer_norm(module.norm1) and is_plain_layer_norm(module.norm3) and norm2_ok:
            if override_forward(module, _block_forward):
                log.add(name, "WanTransformerBlock.forward -> diffexp::norm_modulate, gated_residual[_norm_modulate]")
        _patch_attention(f"{name}.attn1", module.attn1, log)
        _patch_attention(f"{name}.attn2", module.attn2, log)
    if gelu_epilogue:
        patch_gelu_modules(model, log)
    return log.lines()
