"""Launch refuses weights this machine cannot hold, with the numbers, in seconds (not the OOM killer minutes in)."""

from __future__ import annotations

import logging
import resource
import subprocess
import sys
import time

import psutil
import pytest
import torch

from diffexp.config import compose, to_config
from diffexp.errors import ConfigError
from diffexp.models.arch import build_components, load_arch
from diffexp.models.footprint import GIB, check_resources, resource_problems, weight_bytes
from tests.conftest import cli_env

BIG = ["model=wan22_t2v", "engine=diffusers", "model.weights=random", "engine.device=cpu", "model.dtype=float32"]


def _limit_memory():
    # If the check ever lets the build through, it fails at 8 GiB instead of taking the shared machine down.
    resource.setrlimit(resource.RLIMIT_AS, (8 * GIB, 8 * GIB))


def test_counted_bytes_equal_a_real_build():
    built = build_components(load_arch("tiny_flux"), seed=0, dtype=torch.bfloat16)
    real = {
        name: sum(p.numel() * p.element_size() for p in module.parameters())
        for name, module in built.items()
        if isinstance(module, torch.nn.Module)
    }
    assert weight_bytes("tiny_flux", "bfloat16") == real


def test_cli_refuses_a_model_larger_than_this_machine_with_the_numbers(tmp_path):
    need = sum(weight_bytes("wan22_t2v", "float32").values())
    if psutil.virtual_memory().available >= need:
        pytest.skip("this machine could hold wan22_t2v in float32")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "diffexp", *BIG, "tracking.enabled=false"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
        preexec_fn=_limit_memory,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert f"needs {need / GIB:.1f} GiB of weights in float32" in out and "GiB available (available host memory)" in out
    assert "engine.skip_resource_check=true" in out
    assert time.monotonic() - started < 120


def test_the_figures_decide_and_the_override_skips():
    cfg = to_config(compose(BIG))
    need = sum(weight_bytes("wan22_t2v", "float32").values())
    assert need > 120 * GIB  # 2 × 14.3 B experts + 5.7 B UMT5-XXL, 4 bytes each
    [p] = resource_problems(cfg, available=(need - 1, "test figure"))
    assert f"needs {need / GIB:.1f} GiB" in p and f"has {(need - 1) / GIB:.1f} GiB available (test figure)" in p
    assert resource_problems(cfg, available=(need, "test figure")) == []
    skipped = to_config(compose([*BIG, "engine.skip_resource_check=true"]))
    assert resource_problems(skipped, available=(0, "test figure")) == []
    check_resources(skipped)  # the real machine's figure: skipped, so no refusal


def test_tiny_models_are_not_estimated():
    cfg = to_config(compose([]))
    assert resource_problems(cfg, available=(0, "nothing")) == []


def test_refusal_is_a_config_error_on_this_machine():
    cfg = to_config(compose(BIG))
    if psutil.virtual_memory().available >= sum(weight_bytes("wan22_t2v", "float32").values()):
        pytest.skip("this machine could hold it")
    with pytest.raises(ConfigError, match="needs .* GiB of weights in float32"):
        check_resources(cfg)


def test_cpu_parallel_run_with_more_ranks_than_cores_warns(caplog):
    cores = psutil.cpu_count() or 1
    cfg = to_config(
        compose(["engine.device=cpu", f"parallel.num_gpus={cores + 1}", f"parallel.ulysses_degree={cores + 1}"])
    )
    with caplog.at_level(logging.WARNING):
        check_resources(cfg)
    assert f"more ranks than this machine's {cores} CPU cores" in caplog.text
