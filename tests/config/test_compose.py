"""Every model composes with a sample of the other groups, typed: typos and wrong types fail at composition."""

from __future__ import annotations

import itertools

import pytest
from hydra.errors import ConfigCompositionException

from diffexp.config import CONF_DIR, compose, to_config
from diffexp.config.schema import Config
from diffexp.engines import validate
from diffexp.reports.suite import SUITE_MODELS

MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
# The guide's seven, plus the LTX recipes.
SUITE = [*SUITE_MODELS, "ltx2", "ltx23"]
GROUP_SAMPLES = [
    ("parallel=single", "offload=none", "attention=default"),
    ("parallel=ulysses4", "offload=layerwise", "attention=fa"),
    ("parallel=usp", "offload=low_vram", "attention=torch_sdpa"),
    ("parallel=ring2", "offload=text_encoder_cpu", "attention=sage_attn"),
]


def test_standard_suite_and_tiny_models_are_all_present():
    assert set(SUITE + ["tiny_flux", "tiny_wan"]) <= set(MODELS)


@pytest.mark.parametrize("model,sample", list(itertools.product(MODELS, GROUP_SAMPLES)))
def test_every_model_composes_with_group_samples(model, sample):
    # SGLang loads checkpoints only: a model built at each run (weights=random) composes with the in-process engine.
    engine = "diffusers" if to_config(compose([f"model={model}"])).model.weights == "random" else "sglang"
    cfg = to_config(compose([f"model={model}", *sample, f"engine={engine}"]))
    assert isinstance(cfg, Config)
    assert cfg.model.name == model
    validate(cfg)


def test_real_models_default_to_sglang_tiny_models_to_diffusers():
    assert to_config(compose(["model=flux1_dev"])).engine.name == "sglang"
    assert to_config(compose(["model=tiny_wan"])).engine.name == "diffusers"
    assert to_config(compose(["model=flux1_dev", "engine=diffusers"])).engine.name == "diffusers"


def test_headline_composition():
    cfg = to_config(compose(["model=wan22_t2v", "parallel=cfg_ulysses4"]))
    assert (cfg.parallel.num_gpus, cfg.parallel.ulysses_degree, cfg.parallel.cfg_parallel) == (8, 4, True)
    assert (
        cfg.model.sampling.num_frames,
        cfg.model.sampling.num_inference_steps,
        cfg.model.sampling.guidance_scale,
    ) == (81, 40, 5.0)
    validate(cfg)


def test_default_is_tiny_flux_in_process():
    cfg = to_config(compose())
    assert (cfg.model.name, cfg.engine.name, cfg.parallel.num_gpus) == ("tiny_flux", "diffusers", 1)


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.sampling.widht=64", "widht"),
        ("offload.prefetch=0.1", "prefetch"),
        ("parallel.num_gpus=two", "num_gpus"),
        ("compile.enabled=maybe", "enabled"),
        ("model=not_a_model", "not_a_model"),
    ],
)
def test_typos_and_wrong_types_fail_at_composition(override, message):
    with pytest.raises(ConfigCompositionException, match=message):
        compose([override])


def test_offload_prefetch_size_is_a_field():
    cfg = to_config(compose(["offload=layerwise", "offload.prefetch_size=0.25"]))
    assert cfg.offload.dit_layerwise is True and cfg.offload.prefetch_size == 0.25
