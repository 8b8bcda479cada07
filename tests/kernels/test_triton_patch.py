"""apply_triton_kernels on tiny random FLUX and Wan transformers: same outputs as the unpatched model."""

import copy

import pytest
import torch
from diffusers import FluxTransformer2DModel, WanTransformer3DModel
from diffusers.hooks import HookRegistry, ModelHook

from diffexp.errors import DiffexpError
from kernels.patch import apply_triton_kernels


def _tiny_flux():
    return FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
    )  # fmt: skip


def _flux_inputs(randn, device, batch=2, image=16, text=5):
    return dict(
        hidden_states=randn(batch, image, 4),
        encoder_hidden_states=randn(batch, text, 32),
        pooled_projections=randn(batch, 32),
        timestep=randn(batch).abs().clamp(max=1),
        img_ids=torch.randint(0, 8, (image, 3), device=device).float(),
        txt_ids=torch.zeros(text, 3, device=device),
        return_dict=False,
    )


def _tiny_wan(cross_attn_norm=True):
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=16, ffn_dim=32, num_layers=2, cross_attn_norm=cross_attn_norm, rope_max_seq_len=32,
    )  # fmt: skip


def _wan_inputs(randn, per_token_timestep=False, batch=1):
    frames, height, width = 2, 6, 8
    seq = frames * (height // 2) * (width // 2)
    timestep = (randn(batch, seq).abs() * 500) if per_token_timestep else (randn(batch).abs() * 500)
    return dict(
        hidden_states=randn(batch, 4, frames, height, width),
        timestep=timestep,
        encoder_hidden_states=randn(batch, 7, 16),
        return_dict=False,
    )


def _randomize(model, randn, device):
    """Random weights everywhere (diffusers zero-inits some), so that every patched path matters."""
    model = model.to(device).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(randn(*p.shape, scale=0.1))
    return model


def _patched_vs_unpatched(model, inputs, dtype=torch.float32, **options):
    model = model.to(dtype)
    patched = copy.deepcopy(model)
    lines = apply_triton_kernels(patched, **options)
    inputs = {k: v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v for k, v in inputs.items()}
    with torch.no_grad():
        return model(**inputs)[0], patched(**inputs)[0], lines, patched


def _assert_bf16_close(got, want, rel_norm, elementwise=True):
    assert torch.isfinite(got).all()
    if elementwise:
        torch.testing.assert_close(got.float(), want.float(), atol=2e-2, rtol=1.6e-2)
    rel = (got.double() - want.double()).norm() / want.double().norm()
    assert rel < rel_norm, f"relative error {rel:.2e}"


def test_flux_patched_matches_unpatched(randn, device):
    want, got, lines, _ = _patched_vs_unpatched(_randomize(_tiny_flux(), randn, device), _flux_inputs(randn, device))
    _assert_bf16_close(got, want, rel_norm=1e-5)
    text = "\n".join(lines)
    for what in ("AdaLayerNormZero.forward", "AdaLayerNormZeroSingle.forward", "AdaLayerNormContinuous.forward",
                 "FluxTransformerBlock.forward", "FluxSingleTransformerBlock.forward", "TritonFluxAttnProcessor"):  # fmt: skip
        assert what in text


@pytest.mark.parametrize("cross_attn_norm", [True, False])
@pytest.mark.parametrize("per_token_timestep", [False, True])
def test_wan_patched_matches_unpatched(cross_attn_norm, per_token_timestep, randn, device):
    model = _randomize(_tiny_wan(cross_attn_norm), randn, device)
    want, got, lines, _ = _patched_vs_unpatched(model, _wan_inputs(randn, per_token_timestep))
    _assert_bf16_close(got, want, rel_norm=1e-5)
    assert any("WanTransformerBlock.forward" in line and "(x2)" in line for line in lines)
    assert any("attn1.processor" in line for line in lines) and any("attn2.processor" in line for line in lines)


def _graph_calls(model, inputs, target: str) -> int:
    """How many calls of `target` (torch.cat: "cat"; an op: its name) torch.compile's graph of `model` holds (and
    that it runs)."""
    calls = []

    def inspecting_backend(gm, example_inputs):
        calls.extend(n for n in gm.graph.nodes if getattr(n.target, "__name__", "").split(".")[0] == target)
        return gm.forward

    torch._dynamo.reset()
    with torch.no_grad():
        torch.compile(model, fullgraph=True, backend=inspecting_backend)(**inputs)
    return len(calls)


def _epilogue_calls(model, inputs) -> int:
    return _graph_calls(model, inputs, "linear_gelu_tanh")


def test_gelu_epilogue_takes_every_tanh_mlp_of_flux(randn, device):
    model = _randomize(_tiny_flux(), randn, device)
    inputs = _flux_inputs(randn, device)
    want, got, lines, patched = _patched_vs_unpatched(model, inputs, gelu_epilogue=True)
    _assert_bf16_close(got, want, rel_norm=1e-5)
    epilogues = sorted(line for line in lines if "linear_gelu_tanh" in line)
    assert epilogues == [
        "single_transformer_blocks.*.proj_mlp: proj_mlp + act_mlp -> diffexp::linear_gelu_tanh (cuBLASLt GELU epilogue) (x1)",
        "transformer_blocks.*.ff.net.*: GELU(tanh).forward -> diffexp::linear_gelu_tanh (cuBLASLt GELU epilogue) (x1)",
        "transformer_blocks.*.ff_context.net.*: GELU(tanh).forward -> diffexp::linear_gelu_tanh (cuBLASLt GELU epilogue) (x1)",
    ]  # fmt: skip
    # one opaque call per MLP in the compiled graph: ff, ff_context of the double block, proj_mlp of the single one
    assert _epilogue_calls(patched, inputs) == 3
    # off by default: the same model patched without it has none
    plain = copy.deepcopy(model)
    assert not [line for line in apply_triton_kernels(plain) if "linear_gelu_tanh" in line]
    assert _epilogue_calls(plain, inputs) == 0


def test_gelu_epilogue_takes_the_wan_ffn(randn, device):
    model = _randomize(_tiny_wan(), randn, device)
    inputs = _wan_inputs(randn)
    want, got, lines, patched = _patched_vs_unpatched(model, inputs, gelu_epilogue=True)
    _assert_bf16_close(got, want, rel_norm=1e-5)
    assert "blocks.*.ffn.net.*: GELU(tanh).forward -> diffexp::linear_gelu_tanh (cuBLASLt GELU epilogue) (x2)" in lines
    assert _epilogue_calls(patched, inputs) == 2


@pytest.mark.gpu
def test_gelu_epilogue_on_gpu_is_the_tanh_gelu_to_bf16_rounding(randn, device):
    from kernels.linear_gelu import linear_gelu_tanh, linear_gelu_tanh_reference

    x = randn(3, 64, 256, dtype=torch.bfloat16)
    w, b = randn(1024, 256, dtype=torch.bfloat16, scale=0.06), randn(1024, dtype=torch.bfloat16, scale=0.1)
    got = linear_gelu_tanh(x, w, b)
    want = linear_gelu_tanh_reference(x.float(), w.float(), b.float())
    assert got.shape == (3, 64, 1024) and got.dtype == torch.bfloat16
    _assert_bf16_close(got, want, rel_norm=1e-2)


def test_linear_of_concat_is_the_linear_of_the_cat(randn, device):
    from kernels.linear_of_concat import linear_of_concat

    parts = [randn(2, 7, 5, dtype=torch.float64), randn(2, 7, 11, dtype=torch.float64)]
    for bias in (True, False):
        linear = torch.nn.Linear(16, 9, bias=bias).to(device, torch.float64)
        with torch.no_grad():
            want = linear(torch.cat(parts, dim=-1))
            got = linear_of_concat(parts, linear)
        assert got.shape == (2, 7, 9)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"parts \[5, 11\] sum to 16, the linear takes 17"):
        linear_of_concat(parts, torch.nn.Linear(17, 9).to(device, torch.float64))


def test_split_proj_out_leaves_the_single_blocks_cat_unwritten(randn, device):
    model = _randomize(_tiny_flux(), randn, device)
    inputs = _flux_inputs(randn, device)
    want, got, lines, split = _patched_vs_unpatched(model, inputs, gelu_epilogue=True, split_proj_out=True)
    _assert_bf16_close(got, want, rel_norm=1e-5)
    assert "single_transformer_blocks.*.proj_out: proj_out(cat([attn, mlp])) -> a GEMM per part, no cat (x1)" in lines
    _, _, _, joined = _patched_vs_unpatched(model, inputs, gelu_epilogue=True)
    # One torch.cat fewer in the compiled graph per single block (the model's own cats of ids and tokens stay),
    # and one opaque diffexp::linear_of_concat instead.
    assert _graph_calls(joined, inputs, "cat") - _graph_calls(split, inputs, "cat") == len(
        model.single_transformer_blocks
    )
    assert _graph_calls(split, inputs, "linear_of_concat") == len(model.single_transformer_blocks)


def test_second_apply_patches_nothing(randn, device):
    model = _randomize(_tiny_flux(), randn, device)
    assert apply_triton_kernels(model)
    assert apply_triton_kernels(model) == []


def test_refuses_a_forward_replaced_by_a_hook(randn, device):
    model = _randomize(_tiny_flux(), randn, device)
    HookRegistry.check_if_exists_or_initialize(model.transformer_blocks[0]).register_hook(ModelHook(), "probe")
    with pytest.raises(DiffexpError, match="before enabling hooks"):
        apply_triton_kernels(model)


def _tiny_qwen_image():
    from diffusers import QwenImageTransformer2DModel

    return QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=12, axes_dims_rope=[4, 6, 6],
    )  # fmt: skip


def _qwen_inputs(randn, batch=1, text=5):
    frame, height, width = 1, 4, 4  # latent patches
    return dict(
        hidden_states=randn(batch, frame * height * width, 16),
        encoder_hidden_states=randn(batch, text, 12),
        encoder_hidden_states_mask=torch.ones(batch, text, dtype=torch.long, device=randn(1).device),
        timestep=randn(batch).abs().clamp(max=1),
        img_shapes=[[(frame, height, width)]] * batch,
        return_dict=False,
    )


def test_other_dits_take_the_gelu_epilogue_alone(randn, device):
    """Qwen-Image's MLPs are diffusers' FeedForward with the tanh GELU: the epilogue takes each, nothing else."""
    model = _randomize(_tiny_qwen_image(), randn, device)
    inputs = _qwen_inputs(randn)
    want, got, lines, patched = _patched_vs_unpatched(model, inputs, gelu_epilogue=True)
    _assert_bf16_close(got, want, rel_norm=1e-5)
    assert lines == [
        "transformer_blocks.*.img_mlp.net.*: GELU(tanh).forward -> diffexp::linear_gelu_tanh (cuBLASLt GELU epilogue) (x2)",
        "transformer_blocks.*.txt_mlp.net.*: GELU(tanh).forward -> diffexp::linear_gelu_tanh (cuBLASLt GELU epilogue) (x2)",
    ]  # fmt: skip
    assert _epilogue_calls(patched, inputs) == 4  # two blocks, an image and a text MLP each
    with pytest.raises(DiffexpError, match="no patch for QwenImageTransformer2DModel"):
        apply_triton_kernels(copy.deepcopy(model))  # without the epilogue there is nothing to swap in


def test_a_dit_without_tanh_gelu_mlps_is_refused():
    from diffusers import ZImageTransformer2DModel

    model = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=4, dim=32, n_layers=1, n_refiner_layers=1, n_heads=2,
        n_kv_heads=2, cap_feat_dim=16, axes_dims=[4, 6, 6], axes_lens=[32, 32, 32],
    )  # fmt: skip
    with pytest.raises(DiffexpError, match="no patch for ZImageTransformer2DModel.*has none of"):
        apply_triton_kernels(model, gelu_epilogue=True)


def test_unsupported_model_is_an_error():
    with pytest.raises(DiffexpError, match="no patch for Linear"):
        apply_triton_kernels(torch.nn.Linear(4, 4))


@pytest.mark.gpu
def test_bf16_on_gpu(randn, device):
    """bf16 end to end: the patched model differs from diffusers only by rounding (fewer roundings, in fact)."""
    flux = _randomize(_tiny_flux(), randn, device)
    for options in ({}, {"gelu_epilogue": True, "split_proj_out": True}):
        want, got, _, _ = _patched_vs_unpatched(flux, _flux_inputs(randn, device, image=256), torch.bfloat16, **options)
        _assert_bf16_close(got, want, rel_norm=2e-2, elementwise=False)
    wan = _randomize(_tiny_wan(), randn, device)
    want, got, _, _ = _patched_vs_unpatched(wan, _wan_inputs(randn), torch.bfloat16)
    _assert_bf16_close(got, want, rel_norm=2e-2, elementwise=False)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["flux", "wan"])
def test_patched_model_compiles_fullgraph(family, randn, device):
    """No graph break anywhere in a patched transformer (aot_eager: Dynamo + functionalization, no C++)."""
    if family == "flux":
        model, inputs = _randomize(_tiny_flux(), randn, device), _flux_inputs(randn, device)
    else:
        model, inputs = _randomize(_tiny_wan(), randn, device), _wan_inputs(randn)
    apply_triton_kernels(model)
    torch._dynamo.reset()
    with torch.no_grad():
        want = model(**inputs)[0]
        got = torch.compile(model, fullgraph=True, backend="aot_eager")(**inputs)[0]
    torch.testing.assert_close(got, want)
