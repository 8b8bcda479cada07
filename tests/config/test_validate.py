"""Each semantic rule: an error that names the field, the value and what is allowed."""

from __future__ import annotations

import pytest

from diffexp.config import check_launch, compose, to_config
from diffexp.engines import validate
from diffexp.errors import ConfigError


def problems(*overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        cfg = to_config(compose(list(overrides)))
        validate(cfg)
        check_launch(cfg)
    return info.value.problems


def test_degrees_must_multiply_to_gpu_count():
    [p] = problems("parallel=ulysses4", "parallel.num_gpus=3")
    assert "parallel.num_gpus=3" in p and "ulysses_degree (4)" in p and "= 4" in p


def test_cfg_parallel_doubles_the_sequence_parallel_degree():
    [p] = problems("model=wan22_t2v", "parallel=cfg_ulysses4", "parallel.num_gpus=4")
    assert "parallel.num_gpus=4" in p and "× 2 (CFG-parallel) = 8" in p


def test_cfg_parallel_needs_guidance_above_one():
    [p] = problems("model=zimage_turbo", "parallel=cfg2")
    assert "guidance_scale=0.0" in p and "guidance_scale > 1" in p


def test_prefetch_size_must_be_non_negative():
    [p] = problems("offload=layerwise", "offload.prefetch_size=-0.5")
    assert "offload.prefetch_size=-0.5" in p and ">= 0" in p


def test_gelu_epilogue_is_part_of_the_triton_kernel_swap():
    [p] = problems("engine=diffusers", "kernels.gelu_epilogue=true")
    assert "kernels.gelu_epilogue=true" in p and "kernels.impl='torch'" in p and "kernels=triton" in p
    validate(to_config(compose(["engine=diffusers", "kernels=triton", "kernels.gelu_epilogue=true"])))


def test_kernels_triton_needs_a_family_with_a_patch_before_the_model_is_built():
    [p] = problems("model=zimage_turbo", "model.weights=random", "engine=diffusers", "kernels=triton")
    assert "kernels=triton with model.family='zimage'" in p and "SwiGLU" in p and "flux, wan, qwen_image" in p
    [p] = problems("model=qwen_image", "model.weights=random", "engine=diffusers", "kernels=triton",
                   "kernels.gelu_epilogue=false")  # fmt: skip
    assert "the GELU epilogue is all kernels/ patches in this family" in p
    validate(to_config(compose(["model=qwen_image", "model.weights=random", "engine=diffusers", "kernels=triton"])))


@pytest.mark.parametrize("backend", ["sliding_tile_attn", "video_sparse_attn", "vmoba_attn"])
def test_attention_backend_must_be_supported_by_the_engine(backend):
    [p] = problems(f"attention={backend}")
    assert f"attention.backend='{backend}'" in p and "engine diffusers supports" in p
    validate(to_config(compose(["model=wan22_t2v", f"attention={backend}"])))  # fine on sglang


def test_task_that_needs_an_image_requires_one():
    [p] = problems("model=qwen_image_edit", "model.sampling.image_path=null")
    assert "model.sampling.image_path=None" in p and "image_edit" in p


def test_input_image_must_exist_at_launch():
    [p] = problems("model=wan22_ti2v", "engine=diffusers", "model.sampling.image_path=/nonexistent/astronaut.jpg")
    assert "/nonexistent/astronaut.jpg" in p and "no such file" in p


def test_more_gpus_than_visible_is_a_launch_error():
    # SGLang always runs on GPUs: asking for 8 on a machine with fewer fails before launch.
    from diffexp.gpus import visible_gpu_count

    if visible_gpu_count() >= 8:
        pytest.skip("this machine has 8 GPUs")
    found = problems("model=flux1_dev", "parallel=ulysses8", "model.sampling.image_path=null")
    assert any("parallel.num_gpus=8: only" in p and "visible" in p for p in found)


def test_unknown_values_list_what_is_allowed():
    found = problems("model.weights=fake", "engine.device=tpu", "profile.mode=perf")
    assert any("model.weights='fake': allowed values are pretrained, random, tiny" in p for p in found)
    assert any("engine.device='tpu'" in p for p in found)
    assert any("profile.mode='perf'" in p for p in found)


def test_random_weights_need_an_architecture():
    [p] = problems("model=hunyuan3d_shape", "engine=diffusers", "model.weights=random")  # no buildable arch
    assert "model.arch" in p


def test_all_problems_reported_together():
    found = problems(
        "parallel=ulysses2", "parallel.num_gpus=3", "offload.prefetch_size=-1", "model.sampling.num_inference_steps=0"
    )
    assert len(found) >= 3


def test_nsys_around_a_multi_gpu_in_process_run_is_refused():
    found = problems("engine=diffusers", "parallel=ulysses2", "profile=nsys", "engine.dry_run=true")
    assert any("profile.mode=nsys with parallel.num_gpus=2" in p and "profile=torch" in p for p in found)


def test_in_process_cfg_parallel_has_two_branches():
    """SGLang takes cfg_parallel_size=4 (see test_sglang_validation); the in-process engine has 2 CFG groups."""
    overrides = ("model=wan22_t2v", "parallel=gpus2", "parallel.num_gpus=8", "parallel.cfg_parallel_size=4",
                 "parallel.ulysses_degree=2", "engine.dry_run=true")  # fmt: skip
    found = problems("engine=diffusers", *overrides)
    assert any("parallel.cfg_parallel_size=4" in p and "allowed: 1 or 2" in p and "engine=sglang" in p for p in found)
    validate(to_config(compose(["engine=sglang", *overrides])))


def _resolution_problems(*overrides: str) -> list[str]:
    try:
        validate(to_config(compose(list(overrides))))
    except ConfigError as exc:
        return [p for p in exc.problems if "resolution" in p]
    return []


def test_one_preset_table_for_both_engines():
    """`resolution=2k` used to pass validation on the in-process engine and then fail with a KeyError there."""
    from diffexp.config.schema import RESOLUTION_PRESETS

    preset = ("model=flux1_dev", "model.sampling.width=null", "model.sampling.height=null")
    for engine in ("engine=diffusers", "engine=sglang"):
        assert _resolution_problems(*preset, engine, "model.sampling.resolution=2k") == []
        [found] = _resolution_problems(*preset, engine, "model.sampling.resolution=480p")
        assert found.startswith("model.sampling.resolution='480p': the presets are 720p, 1080p, 2k, 4k")
    assert RESOLUTION_PRESETS["2k"] == (2560, 1440)
