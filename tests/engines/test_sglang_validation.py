"""Impossible topologies and flags SGLang 0.5.23 would reject, caught at composition (real Hydra)."""

from __future__ import annotations

import pytest

from diffexp.config import compose, to_config
from diffexp.engines import validate
from diffexp.engines.sglang import flags
from diffexp.engines.sglang.engine import prepare
from diffexp.errors import ConfigError


def problems(*overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate(to_config(compose(list(overrides))))
    return info.value.problems


def valid(*overrides: str) -> None:
    validate(to_config(compose(list(overrides))))


def test_ulysses_times_ring_must_fill_the_gpus_left_after_cfg():
    # 8 GPUs, CFG-parallel: each branch group has 4 GPUs, so ulysses × ring must be 4.
    [p] = problems("model=wan22_t2v", "parallel=cfg_ulysses4", "parallel.ulysses_degree=2")
    assert "ulysses_degree (2) × ring_degree (1) × 2 (CFG-parallel) = 4" in p and "parallel.num_gpus=8" in p


def test_usp_degrees_must_multiply_to_the_gpu_count():
    [p] = problems("model=wan22_t2v", "parallel=usp", "parallel.num_gpus=8")
    assert "ulysses_degree (2) × ring_degree (2) = 4" in p


def test_gpus_must_divide_into_tp_times_cfg_groups():
    [p] = problems("model=wan22_t2v", "parallel=gpus2", "parallel.num_gpus=3", "parallel.cfg_parallel=true")
    assert "parallel.num_gpus=3: must be divisible by tp_degree (1) × CFG-parallel degree (2) = 2" in p


def test_cfg_parallel_needs_two_gpus():
    [p] = problems("model=wan22_t2v", "parallel=single", "parallel.cfg_parallel=true")
    assert "CFG-parallel needs at least 2 GPUs" in p


def test_cfg_parallel_size_one_contradicts_the_switch():
    found = problems("model=wan22_t2v", "parallel=cfg2", "parallel.cfg_parallel_size=1")
    assert any("the size supersedes the switch" in p for p in found)


def test_sglang_accepts_wider_cfg_groups_and_tensor_parallel():
    # --cfg-parallel-size 4 (4-branch CFG) and tp × ulysses are legal in 0.5.23.
    valid(
        "model=ltx23",
        "parallel=gpus2",
        "parallel.num_gpus=8",
        "parallel.cfg_parallel_size=4",
        "parallel.ulysses_degree=2",
    )
    valid("model=wan22_t2v", "parallel=ulysses2", "parallel.num_gpus=4", "parallel.tp_degree=2")


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (
            ("model=flux1_dev", "engine.dit_precision=fp8"),
            "engine.dit_precision='fp8': allowed values are fp32, fp16, bf16",
        ),
        (("model=flux1_dev", "model.weights=random"), "model.weights=random: engine sglang loads checkpoints only"),
        (("model=hunyuan3d_shape", "engine.config_file=/x.json"), "choose one --config source"),
    ],
)
def test_flags_sglang_cannot_express_are_config_errors(overrides, expected, tmp_path):
    cfg = to_config(compose([*overrides, f"output_dir={tmp_path}"]))
    assert any(expected in p for p in flags.problems(cfg))
    with pytest.raises(ConfigError):
        prepare(cfg, tmp_path)


def test_attention_backends_follow_the_0_5_23_enum():
    valid("model=flux1_dev", "attention=fa", "attention.backend=fa4")
    [p] = problems("model=flux1_dev", "attention.backend=xformers")  # a diffusers-backend name, not a native one
    assert "attention.backend='xformers'" in p
