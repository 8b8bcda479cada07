"""SGLang 0.5.23's --performance-mode auto placement (diffexp.tune.auto_mode) on documented situations: the
FLUX.1-dev sizes (12 B DiT, about 22.2 GiB in bf16; about 31.5 GiB with the T5-XXL and CLIP encoders and the VAE)
and the thresholds the source states."""

from diffexp.tune.auto_mode import DEPLOYMENTS, Deployment, Situation, as_overrides, auto_placement

H200_GIB = 139.8
FLUX = dict(image=True, dit_gib=22.2, weights_gib=31.5)


def test_flux_24_gib_offloads_dit_and_streams_the_encoders():
    p = auto_placement(Situation(free_gib=24, total_gib=H200_GIB, **FLUX))
    # _adjust_offload for an image model, then the default layerwise set (below the 45 GiB image threshold, so
    # the VAE is not kept resident); FLUX's deployment config lists no DiT layerwise mode.
    assert p.dit_cpu_offload and p.text_encoder_cpu_offload and not p.image_encoder_cpu_offload
    assert p.layerwise_offload_components == ["text_encoder", "image_encoder", "vae"]
    assert not p.use_fsdp_inference
    overrides, unexpressed = as_overrides(p)
    assert overrides == [
        "offload=none",
        "offload.dit_cpu=true",
        "offload.text_encoder_cpu=true",
        "offload.vae_cpu=true",
    ]
    assert unexpressed == []


def test_flux_above_the_image_threshold_keeps_dit_and_vae_resident():
    p = auto_placement(Situation(free_gib=50, total_gib=H200_GIB, **FLUX))  # >= 45, < 2 × 31.5
    assert not p.dit_cpu_offload and p.text_encoder_cpu_offload
    assert p.layerwise_offload_components == ["text_encoder", "image_encoder"]


def test_twice_the_weights_free_keeps_everything_resident():
    p = auto_placement(Situation(free_gib=64, total_gib=H200_GIB, **FLUX))  # 64 >= 2 × 31.5
    assert not (p.dit_cpu_offload or p.text_encoder_cpu_offload or p.image_encoder_cpu_offload)
    assert p.layerwise_offload_components is None
    assert as_overrides(p)[0] == ["offload=none"]


def test_a_device_under_30_gib_offloads_dit_and_encoders():
    p = auto_placement(Situation(free_gib=22, total_gib=24, **FLUX))
    assert p.dit_cpu_offload and p.text_encoder_cpu_offload and p.image_encoder_cpu_offload


def test_wan_streams_its_dit_when_it_needs_more_than_80_percent_of_free_memory():
    wan = dict(image=False, dit_gib=26.6, weights_gib=38.0, deployment=DEPLOYMENTS["wan"])
    streamed = auto_placement(Situation(free_gib=30, total_gib=H200_GIB, **wan))  # 26.6 > 0.8 × 30
    assert streamed.layerwise_offload_components[0] == "dit"
    kept = auto_placement(Situation(free_gib=40, total_gib=H200_GIB, **wan))  # 26.6 <= 0.8 × 40
    assert "dit" not in kept.layerwise_offload_components
    assert as_overrides(streamed)[0][:2] == ["offload=none", "offload.dit_layerwise=true"]


def test_fsdp_replaces_dit_offload_on_two_gpus_when_the_model_declares_it():
    d = Deployment(fsdp_auto_min_available_memory_gb=20)
    p = auto_placement(
        Situation(
            free_gib=40,
            total_gib=H200_GIB,
            image=False,
            dit_gib=26.6,
            weights_gib=38.0,
            num_gpus=2,
            uses_cfg=True,
            deployment=d,
        )
    )
    assert p.use_fsdp_inference and not p.dit_cpu_offload and p.enable_cfg_parallel
    assert any("FSDP" in note for note in as_overrides(p)[1])
    no_cfg = auto_placement(
        Situation(
            free_gib=40, total_gib=H200_GIB, image=False, dit_gib=26.6, weights_gib=38.0, num_gpus=2, deployment=d
        )
    )
    assert not no_cfg.use_fsdp_inference  # fsdp_auto_requires_cfg
