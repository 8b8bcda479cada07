"""diffexp/bench/suite_h200.sh composes and validates every run it would make (SUITE_DRY_RUN=1, on CPU): the seven
recipes single-GPU with random weights and their floor, fewer steps where a call cannot hold the recipe's, the recipe
recorded in each config so the suite table flags the departures, and the profiled runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from diffexp.reports.suite import SUITE_MODELS

SCRIPT = Path(__file__).resolve().parents[2] / "diffexp" / "bench" / "suite_h200.sh"


def dry_run_env() -> dict[str, str]:
    """The script composes and validates each run (engine.dry_run=true) with this interpreter's diffexp."""
    return {**os.environ, "SUITE_DRY_RUN": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


@pytest.mark.slow
def test_every_suite_run_composes_and_validates(tmp_path):
    env = dry_run_env()
    proc = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path), "images", "qwen", "edit", "flux2", "ti2v", "t2v"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "failed" not in proc.stdout, proc.stdout
    suite = tmp_path / "suite"
    assert sorted(p.name for p in suite.iterdir() if p.is_dir() and not p.name.startswith("profile_")) == sorted(
        SUITE_MODELS
    )
    for name in SUITE_MODELS:
        assert "in-process diffusers run" in (suite / f"{name}.log").read_text()
        cfg = yaml.safe_load((suite / name / ".hydra" / "config.yaml").read_text())
        assert cfg["recipe"] == name and cfg["parallel"]["num_gpus"] == 1 and cfg["measure"]["floor"] is True
        assert cfg["model"]["weights"] == "random" and cfg["tracking"]["enabled"] is False
    steps = {
        n: yaml.safe_load((suite / n / ".hydra" / "config.yaml").read_text())["model"]["sampling"] for n in SUITE_MODELS
    }
    assert steps["flux1_dev"]["num_inference_steps"] == 50  # as the recipe says
    assert steps["wan22_t2v"]["num_inference_steps"] == 4 and steps["qwen_image_edit"]["num_inference_steps"] == 20
    for name in SUITE_MODELS:  # each recipe's profiled run follows it: 2 of 4 steps traced, compile on
        profiled = yaml.safe_load((suite / f"profile_{name}" / ".hydra" / "config.yaml").read_text())
        assert profiled["profile"] == {**profiled["profile"], "mode": "torch", "num_steps": 2}
        assert profiled["model"]["sampling"]["num_inference_steps"] == 4 and profiled["compile"]["enabled"] is True


@pytest.mark.slow
def test_suite_stages_run_one_of_a_parts_two_runs_and_refuse_any_other(tmp_path):
    """A part whose measured and profiled runs each need a call (t2v, a cold edit) runs one of them at a time."""
    env = dry_run_env()
    proc = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path), "t2v"], env={**env, "SUITE_STAGES": "profile"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in (tmp_path / "suite").iterdir() if p.is_dir()) == ["profile_wan22_t2v"]
    wrong = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "other"), "t2v"], env={**env, "SUITE_STAGES": "run floor"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert wrong.returncode == 2 and "SUITE_STAGES=run floor: each stage is run or profile" in wrong.stderr
