"""Weightless construction + seeded in-place initialisation: deterministic, complete, buffers intact."""

from __future__ import annotations

import torch

from diffexp.models.arch import build_components, build_components_with_stats, load_arch


def _state(components) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": value
        for name, module in components.items()
        if isinstance(module, torch.nn.Module)
        for key, value in module.state_dict().items()
    }


def test_same_seed_same_weights_other_seed_other_weights():
    arch = load_arch("tiny_wan")
    a, b, c = (_state(build_components(arch, seed)) for seed in (0, 0, 1))
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point() and a[k].numel() > 1)


def test_every_parameter_is_real_finite_in_the_run_dtype_and_norms_start_at_one():
    components, stats = build_components_with_stats(load_arch("tiny_flux"), seed=0, dtype=torch.bfloat16)
    for name, module in components.items():
        if not isinstance(module, torch.nn.Module):
            continue
        for key, param in module.named_parameters():
            assert param.device.type == "cpu" and param.dtype == torch.bfloat16, (name, key)
            assert torch.isfinite(param).all(), (name, key)
    norm = components["transformer"].transformer_blocks[0].attn.norm_q
    assert torch.equal(norm.weight, torch.ones_like(norm.weight))
    linear = components["transformer"].transformer_blocks[0].attn.to_q
    assert linear.weight.std() > 0 and linear.weight.abs().max() <= 1 / linear.in_features**0.5
    assert stats.build_s > 0 and stats.build_host_rss_gib > 0
    assert stats.parameters["transformer"] == sum(p.numel() for p in components["transformer"].parameters())


def test_buffers_computed_in_init_match_an_ordinary_construction():
    """Rotary tables and position ids come from the constructor, not from uninitialised memory."""
    import diffusers

    arch = load_arch("tiny_wan")
    built = dict(build_components(arch, seed=0)["transformer"].named_buffers())
    ordinary = dict(diffusers.WanTransformer3DModel(**arch["components"]["transformer"]["config"]).named_buffers())
    assert built.keys() == ordinary.keys() == {"rope.freqs_cos", "rope.freqs_sin"}
    assert all(torch.equal(built[k], ordinary[k]) for k in built)
    clip = build_components(load_arch("tiny_flux"), seed=0)["text_encoder"]
    assert torch.equal(dict(clip.named_buffers())["embeddings.position_ids"], torch.arange(77).unsqueeze(0))


def test_tied_parameters_stay_tied():
    spec = {
        "class": "transformers.T5ForConditionalGeneration",
        "config_class": "transformers.T5Config",
        "config": {"d_model": 16, "d_kv": 4, "d_ff": 16, "num_layers": 1, "num_heads": 2, "tie_word_embeddings": True},
    }
    [model] = build_components({"components": {"t5": spec}}, seed=0).values()
    assert model.lm_head.weight is model.shared.weight
    assert model.encoder.embed_tokens.weight is model.shared.weight
