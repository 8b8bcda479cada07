"""Every shipped space composes: each choice's overrides make a valid run config on top of its model, and a
misspelt key is refused with its name."""

from __future__ import annotations

import pytest

from diffexp.config import compose, to_config, validate
from diffexp.errors import ConfigError
from diffexp.tune.config import TUNE_DIR, load_tune_config, split_overrides
from diffexp.tune.space import as_choice

SPACES = sorted(p.stem for p in TUNE_DIR.glob("*.yaml"))
IMAGE = ["model=flux1_dev", "model.weights=random", "engine=diffusers"]
MODEL = {"image": IMAGE, "image_core": IMAGE, "video": ["model=tiny_wan"]}


@pytest.mark.parametrize("name", SPACES)
def test_every_choice_and_anchor_composes(name):
    tcfg = load_tune_config(name, [])
    base = MODEL.get(name, ["model=tiny_flux"])
    choices = [as_choice(v) for spec in tcfg.space.values() for v in spec.choices.values()]
    choices += [as_choice(v) for v in tcfg.anchors.values()]
    assert choices
    for choice in choices:
        validate(to_config(compose([*base, *tcfg.base, *choice.overrides])))


def test_overrides_split_and_a_misspelt_field_is_refused():
    assert split_overrides(["tune=image", "tune.vram_gib=24", "model=flux1_dev"]) == (
        "image",
        ["vram_gib=24"],
        ["model=flux1_dev"],
    )
    with pytest.raises(ConfigError, match="vram_gb"):
        load_tune_config("image", ["vram_gb=24"])
