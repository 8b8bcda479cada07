"""Sizes the model cannot produce are refused at validation, with the allowed values (not rounded silently)."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffexp.config import compose, to_config, validate
from diffexp.config.shapes import grid_for
from diffexp.errors import ConfigError

MODELS = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "conf" / "model").glob("*.yaml"))


def problems(*overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate(to_config(compose(list(overrides))))
    return info.value.problems


def test_flux_width_off_the_grid_is_refused_with_the_nearest_sizes():
    [p] = problems("model=flux1_dev", "engine=diffusers", "model.weights=random", "model.sampling.width=50")
    assert (
        p == "model.sampling.width=50: must be a multiple of 16 for family flux (VAE ×8 · patch 2); nearest: 48 or 64"
    )


def test_tiny_flux_grid_comes_from_its_arch():
    # tiny_flux's VAE has two blocks (×2), the pipeline packs 2×2 latents: width 50 would give 48 pixels.
    [p] = problems("model.sampling.width=50")
    assert "multiple of 4" in p and "VAE ×2 · patch 2" in p and "48 or 52" in p


def test_wan_frames_must_be_4k_plus_1():
    [p] = problems("model=tiny_wan", "model.sampling.num_frames=8")
    assert p == "model.sampling.num_frames=8: must be 4k+1 for family wan (temporal VAE ×4); nearest: 5 or 9"


def test_sglang_runs_get_the_same_check():
    [p] = problems("model=wan22_t2v", "model.sampling.height=500")
    assert "model.sampling.height=500" in p and "multiple of 16" in p


def test_wan22_ti2v_uses_its_16x_vae():
    cfg = to_config(compose(["model=wan22_ti2v"]))
    assert grid_for(cfg.model).spatial == 32


@pytest.mark.parametrize("model", MODELS)
def test_every_preset_is_on_its_grid(model, tmp_path):
    cfg = to_config(compose([f"model={model}", f"model.sampling.image_path={tmp_path / 'x.png'}"]))
    validate(cfg)
