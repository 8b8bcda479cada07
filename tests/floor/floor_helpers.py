"""Capturing a real pipeline's denoise step for the floor tests."""

from __future__ import annotations


def captured(*overrides: str):
    """(typed config, StepCalls) of `python -m diffexp <overrides>`'s first denoise step."""
    from diffexp.config import compose, to_config
    from diffexp.floor.capture import capture_step

    cfg = to_config(compose(list(overrides)))
    return cfg, capture_step(cfg)
