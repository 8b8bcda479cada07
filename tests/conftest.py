"""Shared fixtures: real Hydra composition, a real MLflow store in a temp dir, the repo's paths."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

# Triton reads TRITON_INTERPRET when a kernel is decorated, i.e. when kernels/ is first imported, which any test may
# cause (a kernels=triton run, the transformer A/B): on a machine without CUDA, set it before any test runs so the
# kernels always go through Triton's CPU interpreter, whatever order the tests run in.
if os.environ.get("TRITON_INTERPRET") is None:
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def as_on_a_gpu_box(env: Mapping[str, str], tmp: Path) -> dict[str, str]:
    """`env` for a subprocess run as on the GPU box, where MLflow and plotly are not installed: importing either
    fails there and in every process it starts (the tuner's trials, an engine's ranks), from stand-in packages
    under `tmp` that come first on PYTHONPATH. (2026-12-03: a block inside the tuning process alone let every H200
    trial fail on `import mlflow` while the CPU test passed.)"""
    shadow = tmp / "as_on_a_gpu_box"
    for name in ("mlflow", "plotly"):
        (shadow / name).mkdir(parents=True, exist_ok=True)
        (shadow / name / "__init__.py").write_text(
            f"raise ModuleNotFoundError({f'No module named {name!r} (as on the GPU box)'!r}, name={name!r})\n"
        )
    path = os.pathsep.join(p for p in (str(shadow), env.get("PYTHONPATH", "")) if p)
    return {**env, "PYTHONPATH": path}


@pytest.fixture(autouse=True)
def _no_inherited_tracking_uri(monkeypatch):
    """Every store rule honours $MLFLOW_TRACKING_URI, and `mlflow.set_tracking_uri` sets it process-wide: no test
    may leak it into the next one (or into the `python -m diffexp` subprocesses that inherit the environment)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def mlflow_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def make_config(tmp_path, mlflow_uri):
    """Compose a typed run config the way `python -m diffexp` does, logging to the temp store."""
    from diffexp.config import compose, to_config

    def make(*overrides: str, run: str = "run"):
        return to_config(compose([*overrides, f"tracking.uri={mlflow_uri}", f"output_dir={tmp_path / run}"]))

    return make


@pytest.fixture
def mlflow_client(mlflow_uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_uri)


def artifact_paths(client, run_id: str, path: str = "") -> list[str]:
    """Every artifact file of a run, recursively, as paths relative to the run's artifact root."""
    out = []
    for item in client.list_artifacts(run_id, path):
        out += artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return out


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(args: list[str], cwd, timeout: float = 600):
    """`python -m <args…>` as a user types it, to completion, output captured."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=cli_env()
    )


def wait_for_run_log(cwd, text: str, timeout_s: float = 180) -> Path:
    """The run.log under <cwd>/outputs once it says `text` (e.g. "measured generation": the run is under way)."""
    import time

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        logs = list((Path(cwd) / "outputs").rglob("run.log")) if (Path(cwd) / "outputs").exists() else []
        if logs and text in logs[0].read_text():
            return logs[0]
        time.sleep(0.3)
    raise AssertionError(f"no run.log said {text!r} within {timeout_s:g} s")


def start_cli(args: list[str], cwd):
    """`python -m <args…>` started in the background (to be signalled), stdout and stderr in one pipe."""
    import subprocess

    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(),
    )


@pytest.fixture
def python() -> str:
    return sys.executable
