"""Every named sweep composes with real Hydra, each of its points is a valid run, and each says its question."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from diffexp.config import CONF_DIR, register, to_config
from diffexp.config.store import SWEEPS_DIR
from diffexp.engines import validate
from diffexp.reports.suite import SUITE_MODELS
from diffexp.sweeps.handoff import point_overrides, swept_keys

SWEEPS = [
    "ulysses_vs_cfg",
    "prefetch_grid",
    "attention_backends",
    "compile_ablation",
    "offload_tradeoffs",
    "model_suite",
    "tiny_smoke",
]


def points(name: str) -> list[tuple[list[str], object]]:
    """The sweep's jobs as Hydra's basic sweeper expands them, each composed and converted."""
    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"+sweep={name}"], return_hydra_config=True)
        params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
        jobs = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)[0]
        out = []
        for job in jobs:
            point = compose("config", overrides=[f"+sweep={name}", *job, "output_dir=."])
            out.append((job, to_config(point)))
    GlobalHydra.instance().clear()
    return out


def test_every_named_sweep_has_a_file():
    assert sorted(p.stem for p in (SWEEPS_DIR / "sweep").glob("*.yaml")) == sorted(SWEEPS)


@pytest.mark.parametrize("name", SWEEPS)
def test_sweep_composes_into_valid_points(name):
    text = (SWEEPS_DIR / "sweep" / f"{name}.yaml").read_text().splitlines()
    assert text[0] == "# @package _global_" and text[1].startswith("# ") and "?" in text[1]  # the question
    jobs = points(name)
    assert len(jobs) >= 2
    for _job, cfg in jobs:
        validate(cfg)
        assert cfg.sweep == name


def test_the_sweeps_ask_what_the_issue_asks():
    parallel = [(c.parallel.num_gpus, c.parallel.cfg_parallel) for _, c in points("ulysses_vs_cfg")]
    assert sorted(parallel) == sorted([(n, cfg) for n in (2, 4, 8) for cfg in (False, True)])
    prefetch = [(c.offload.dit_layerwise, c.offload.prefetch_size) for _, c in points("prefetch_grid")]
    assert prefetch == [(False, None), (True, 0.0), (True, 0.05), (True, 0.1), (True, 0.25), (True, 0.5)]
    offload = [c.offload for _, c in points("offload_tradeoffs")]
    assert [(o.dit_cpu, o.dit_layerwise, o.text_encoder_cpu, o.vae_cpu) for o in offload] == [
        (False, False, False, False),
        (True, False, False, False),
        (False, True, False, False),
        (False, False, True, False),
        (False, False, False, True),
    ]
    assert {c.compile.enabled for _, c in points("compile_ablation")} == {False, True}
    suite = {c.model.name: c for _, c in points("model_suite")}
    assert set(suite) == set(SUITE_MODELS)
    assert all(c.compile.enabled and c.compile.warmup for c in suite.values())
    wan = suite["wan22_t2v"]
    assert (wan.parallel.num_gpus, wan.parallel.cfg_parallel, wan.parallel.ulysses_degree) == (8, True, 4)
    assert (wan.offload.dit_layerwise, wan.offload.text_encoder_cpu, wan.offload.vae_cpu, wan.offload.dit_cpu) == (
        True,
        True,
        False,
        False,
    )
    assert suite["flux2_dev"].offload.text_encoder_cpu is True
    tiny = points("tiny_smoke")
    assert len(tiny) <= 4 and {c.model.name for _, c in tiny} == {"tiny_flux", "tiny_wan"}


def test_swept_keys_and_point_overrides():
    overrides = ["model=tiny_flux,tiny_wan", "compile=off,on", "+sweep=tiny_smoke", "tracking.uri=x"]
    assert swept_keys(overrides) == ["model", "compile"]
    # A single value on the command line replaces the sweep config's list: no longer swept.
    assert swept_keys(overrides + ["compile=on"]) == ["model"]
    assert swept_keys(["+recipe=flux1_dev,zimage_turbo"]) == ["+recipe"]
    job = ["model=tiny_wan", "compile=on", "+sweep=tiny_smoke", "tracking.uri=x"]
    assert point_overrides(job, ["model", "compile"]) == ["model=tiny_wan", "compile=on"]
