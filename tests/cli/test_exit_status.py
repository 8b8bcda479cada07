"""Config errors: found before the heavy libraries load, and one documented exit status (2) for all of them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import cli_env


def _run(args, cwd, *python_flags):
    return subprocess.run(
        [sys.executable, *python_flags, "-m", "diffexp", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(),
    )


IN_PROCESS_CFG4 = ["engine=diffusers", "model=wan22_t2v", "parallel=gpus2", "parallel.num_gpus=8",
                   "parallel.cfg_parallel_size=4", "parallel.ulysses_degree=2"]  # fmt: skip


@pytest.mark.parametrize(
    "args, says",
    [
        (["model.sampling.width=-1"], "model.sampling.width=-1: must be a positive integer"),  # the config's check
        # The engine's own check (engines/diffusers/checks.py): its layout has two CFG groups, SGLang's has more.
        (IN_PROCESS_CFG4, "parallel.cfg_parallel_size=4: the in-process engine splits the two CFG branches"),
    ],
)
def test_validation_error_is_reported_before_diffusers_or_transformers_load(tmp_path, args, says):
    proc = _run(args, tmp_path, "-X", "importtime")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert says in proc.stdout + proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "diffexp.config.validate" in imported
    assert not {"diffusers", "transformers", "torch"} & imported


@pytest.mark.parametrize(
    "args, says",
    [
        (["model.sampling.widht=3"], "widht"),  # Hydra: no such key
        (["model=no_such_model"], "no_such_model"),  # Hydra: no such option
        (["+model.sampling.num_inference_step=10"], "num_inference_step: unknown key"),  # diffexp: added typo
        (["parallel=ulysses2", "parallel.num_gpus=3"], "parallel.num_gpus=3"),  # diffexp: validation
    ],
)
def test_composition_and_validation_errors_exit_2(tmp_path, args, says):
    proc = _run(args, tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert says in proc.stdout + proc.stderr
    assert not (tmp_path / "mlruns").exists()
