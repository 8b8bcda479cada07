"""A short warmup (compile.warmup_steps) must call every expert the measured run calls, or the uncalled expert's
compile lands inside the measured denoise loop: on the real tiny Wan2.2 (two experts, boundary ratio 0.875,
UniPC flow_shift 3: 4 steps are 999, 900 on `transformer`, then 750, 500 on `transformer_2`)."""

from __future__ import annotations

import torch

from diffexp.engines.diffusers import setup, warmup
from diffexp.measure.clocks import StageClock


def load(make_config, model: str, *overrides: str):
    cfg = make_config(f"model={model}", "engine.device=cpu", "tracking.enabled=false", *overrides)
    return cfg, setup.load(cfg, torch.device("cpu"), StageClock(torch.device("cpu")))


def calls_per_expert(loaded) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in ("transformer", "transformer_2"):
        module = getattr(loaded.pipe, name, None)
        if module is not None:
            counts[name] = 0
            module.register_forward_hook(lambda *_, n=name: counts.__setitem__(n, counts[n] + 1))
    return counts


def test_a_one_step_warmup_of_a_two_expert_wan_is_raised_until_it_calls_both(make_config, caplog):
    cfg, loaded = load(
        make_config, "tiny_wan22", "compile.warmup=true", "compile.warmup_runs=1", "compile.warmup_steps=1"
    )
    counts = calls_per_expert(loaded)
    warm = warmup.warm_up(cfg, loaded, StageClock(torch.device("cpu")))
    # One step (999) reaches only the high-noise expert; two (999, 750) reach both.
    assert warm.steps == 2 and warm.tags()["warmup_steps"] == "2"
    assert counts["transformer"] > 0 and counts["transformer_2"] > 0
    assert "reaches only transformer of the experts a 4-step run calls" in caplog.text


def test_a_warmup_that_already_reaches_both_experts_is_left_as_asked(make_config, caplog):
    cfg, loaded = load(
        make_config, "tiny_wan22", "compile.warmup=true", "compile.warmup_runs=1", "compile.warmup_steps=3"
    )
    assert warmup.warm_up(cfg, loaded, StageClock(torch.device("cpu"))).steps == 3
    assert "experts" not in caplog.text


def test_a_run_that_only_calls_the_high_noise_expert_does_not_raise_the_warmup(make_config):
    # One measured step (999) calls `transformer` only, so a one-step warmup is enough.
    cfg, loaded = load(make_config, "tiny_wan22", "compile.warmup_steps=1")
    assert warmup.warmup_steps(cfg, loaded.pipe, 1) == 1


def test_a_single_dit_pipeline_keeps_its_one_step_warmup(make_config):
    cfg, loaded = load(make_config, "tiny_flux", "compile.warmup_steps=1")
    assert warmup.warmup_steps(cfg, loaded.pipe, 4) == 1
