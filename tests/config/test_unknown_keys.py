"""Keys the schema does not declare are refused at composition, with `+` or without; open groups stay open."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from diffexp.config import compose, to_config
from diffexp.errors import ConfigError


@pytest.mark.parametrize(
    "override, key",
    [
        ("+model.sampling.num_inference_step=10", "model.sampling.num_inference_step"),
        ("+model.foo=1", "model.foo"),
        ("+engine.bogus=true", "engine.bogus"),
        ("+tracking.nope=x", "tracking.nope"),
    ],
)
def test_added_unknown_key_is_refused_naming_it_and_the_allowed_keys(override, key):
    with pytest.raises(ConfigError) as err:
        to_config(compose([override]))
    message = str(err.value)
    assert f"{key}: unknown key" in message
    if key.startswith("model.sampling."):
        assert "num_inference_steps" in message  # the allowed keys are listed


def test_unknown_key_without_plus_fails_composition():
    with pytest.raises(ConfigCompositionException):
        compose(["model.sampling.num_inference_step=10"])


@pytest.mark.parametrize(
    "override",
    [
        "+model.call_kwargs.max_area=5",
        "+extra.note=x",
        "+model.sglang_config.paint=true",
        "+tracking.tags.team=a",
        "+engine.env.FOO=1",
    ],
)
def test_open_groups_take_any_key(override):
    config = to_config(compose([override]))
    group, _, rest = override[1:].partition("=")[0].rpartition(".")
    node = config
    for part in group.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    assert rest in node
