"""A crash exits 3, never 1: the gates' 1 is a verdict (a regression, a failed review, no configuration fits, the
tuner's goal not met), which scripts read as a result and go on (diffexp/tune/tune_h200.sh did, 2026-12-04, when
the comparison crashed without MLflow). Each command here crashes for real: it needs an MLflow store, and MLflow
cannot be imported, as on a GPU box."""

from __future__ import annotations

import subprocess
import sys

import pytest

from diffexp import cli
from tests.conftest import as_on_a_gpu_box, cli_env

RUN_ID = "0" * 32


@pytest.mark.parametrize(
    "command",
    [
        ["diffexp.compare", RUN_ID, RUN_ID],  # MLflow is imported with the command itself
        ["diffexp.review", RUN_ID],
        ["diffexp.report", "tune", RUN_ID],
        ["diffexp.report", "sweep", RUN_ID],
        ["diffexp.tune", "tune=tiny_cpu", "tune.max_trials=1"],  # tracked: its parent run needs MLflow
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_a_crash_exits_3_with_its_traceback(tmp_path, command):
    proc = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=tmp_path, env=as_on_a_gpu_box(cli_env(), tmp_path), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == cli.EXIT_CRASHED == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback (most recent call last)" in proc.stderr and "No module named 'mlflow'" in proc.stderr
    assert "the command crashed (the traceback above); exit status 3, not a verdict" in proc.stderr
    assert not (tmp_path / "outputs" / "tune").exists() or not any((tmp_path / "outputs" / "tune").rglob("trials"))


@pytest.mark.parametrize("against", [[], ["--against", "grid"]], ids=["report", "comparison"])
def test_a_folder_that_is_not_a_tunings_exits_2_in_one_line_without_a_store(tmp_path, against):
    (tmp_path / "grid").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "diffexp.report", "tune", "outputs/tune/missing", *against],
        cwd=tmp_path, env=as_on_a_gpu_box(cli_env(), tmp_path), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == cli.EXIT_UNUSABLE, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "error: outputs/tune/missing: not a tuning's folder (no tune.json)" in proc.stderr.splitlines()
    assert not (tmp_path / "mlruns").exists()
