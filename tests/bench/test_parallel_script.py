"""diffexp/bench/parallel_h200.sh on CPU with PARALLEL_DRY_RUN=1: every multi-GPU run and sweep composes and
validates (engine.dry_run=true) with this checkout's configs, the layouts are the ones asked for at each GPU count,
the single-GPU point is each sweep's baseline, and a GPU count without its layouts is refused before anything runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.bench.test_suite_script import dry_run_env

SCRIPT = Path(__file__).resolve().parents[2] / "diffexp" / "bench" / "parallel_h200.sh"
LAYOUTS = {2: ["ulysses2", "cfg2"], 4: ["ulysses4", "cfg_ulysses2"], 8: ["ulysses8", "cfg_ulysses4"]}


def dry(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**dry_run_env(), "PARALLEL_DRY_RUN": "1"}
    return subprocess.run(["bash", str(SCRIPT), str(out), *args], env=env, capture_output=True, text=True, timeout=300)


def job(folder: Path):
    return OmegaConf.load(folder / ".hydra" / "config.yaml")


@pytest.mark.parametrize(
    "part, folder, layout, steps",
    [
        ("headline", "wan22_t2v_cfg_ulysses4", "cfg_ulysses4", 10),
        ("ulysses8", "wan22_t2v_ulysses8", "ulysses8", 10),
        ("profile", "profile_wan22_t2v_cfg_ulysses4", "cfg_ulysses4", 4),
    ],
)
def test_each_wan_run_composes_on_eight_gpus(tmp_path, part, folder, layout, steps):
    proc = dry(tmp_path, part)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cfg = job(tmp_path / folder)
    assert (cfg.parallel.name, cfg.parallel.num_gpus, cfg.recipe) == (layout, 8, "wan22_t2v")
    assert cfg.model.sampling.num_inference_steps == steps and cfg.compile.enabled
    assert cfg.tracking.enabled is False and cfg.model.weights == "random"


@pytest.mark.slow
@pytest.mark.parametrize(
    "part, model, gpus",
    [("flux", "flux1_dev", 2), ("flux", "flux1_dev", 4), ("flux", "flux1_dev", 8), ("wan", "wan22_t2v", 8)],
)
def test_each_sweep_is_single_and_the_two_layouts_with_the_single_point_as_baseline(tmp_path, part, model, gpus):
    proc = dry(tmp_path, part, str(gpus))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sweep = tmp_path / f"sweep_{model}_{gpus}"
    points = [job(sweep / str(n)) for n in range(3)]
    assert [(p.parallel.name, p.parallel.num_gpus) for p in points] == [
        ("single", 1),
        *((name, gpus) for name in LAYOUTS[gpus]),
    ]
    assert {p.recipe for p in points} == {model} and {p.sweep for p in points} == {"ulysses_vs_cfg"}
    assert OmegaConf.load(sweep / "multirun.yaml").extra.sweep_baseline == "parallel=single"
    if model == "flux1_dev":  # guidance-distilled: true CFG makes every point do the same work
        assert {p.model.call_kwargs.true_cfg_scale for p in points} == {4.0}


def test_a_gpu_count_without_layouts_and_an_unknown_part_are_refused(tmp_path):
    three = dry(tmp_path, "flux", "3")
    assert three.returncode == 2 and "N=3: the sweeps run on 2, 4 or 8 GPUs" in three.stderr
    assert not (tmp_path / "sweep_flux1_dev_3").exists()
    unknown = dry(tmp_path, "ring")
    assert unknown.returncode == 2 and "unknown part ring" in unknown.stderr
