"""Shared fixtures: real Hydra composition, a real MLflow store in a temp dir, the repo's paths."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


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


@pytest.fixture
def python() -> str:
    return sys.executable
