"""A model's task picks its pipeline, with random weights as with a checkpoint: Wan2.2-TI2V-5B's arch (its
checkpoint's WanPipeline) runs the TI2V recipe as WanImageToVideoPipeline, and an input image a pipeline
would drop is refused. On an H200 the recipe had run as text-to-video with the image dropped (a warning only)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from diffexp.config import compose, to_config
from diffexp.engines.diffusers.call import call_kwargs
from diffexp.errors import DiffexpError
from diffexp.floor.capture import build
from diffexp.models import load_pipeline


def test_the_ti2v_recipe_builds_the_image_to_video_pipeline_from_the_wan_arch(tmp_path):
    image = tmp_path / "astronaut.jpg"
    Image.new("RGB", (1280, 720), (90, 90, 120)).save(image)
    cfg = to_config(
        compose(
            ["+recipe=wan22_ti2v", "engine=diffusers", "model.weights=random", f"model.sampling.image_path={image}"]
        )
    )
    pipe = build(cfg, torch.device("meta"))  # the full-size 5 B architecture, shapes only
    assert type(pipe).__name__ == "WanImageToVideoPipeline" and pipe.config.expand_timesteps
    assert "image" in call_kwargs(cfg, pipe)


def _tiny_ti2v(tmp_path, pipeline: str):
    image = tmp_path / "astronaut.png"
    Image.new("RGB", (64, 64), (200, 120, 40)).save(image)
    overrides = ["model=tiny_wan22_ti2v", "engine=diffusers", "model.task=ti2v", f"model.pipeline={pipeline}"]
    return to_config(compose([*overrides, f"model.sampling.image_path={image}"]))


def test_a_tiny_ti2v_run_conditions_on_its_image(tmp_path):
    cfg = _tiny_ti2v(tmp_path, "WanImageToVideoPipeline")
    pipe = load_pipeline(cfg.model, torch.device("cpu"))
    kwargs = call_kwargs(cfg, pipe)
    args = {**kwargs, "num_inference_steps": 1, "generator": torch.Generator().manual_seed(0)}
    with_image = pipe(**args).frames[0]
    other = Image.new("RGB", (64, 64), (10, 220, 250))
    with_other = pipe(**{**args, "image": other, "generator": torch.Generator().manual_seed(0)}).frames[0]
    assert with_image.shape == (9, 64, 64, 3)
    assert abs(with_image - with_other).max() > 1e-3  # the image reaches the output: it is conditioned on


def test_a_pipeline_that_would_drop_the_input_image_is_refused(tmp_path):
    cfg = _tiny_ti2v(tmp_path, "WanPipeline")
    pipe = load_pipeline(cfg.model, torch.device("cpu"))
    with pytest.raises(
        DiffexpError, match=r"model.task='ti2v' conditions on model.sampling.image_path, but WanPipeline"
    ):
        call_kwargs(cfg, pipe)
