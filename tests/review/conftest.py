"""Review fixtures: tiny runs executed for real into a real MLflow store under a temp folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest


@dataclass
class Store:
    """One temp folder: its MLflow store and the tiny runs executed into it."""

    root: Path
    outcomes: dict = field(default_factory=dict)
    # Tags of a run as they were at some point, before later tests reviewed it again.
    snapshots: dict = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def execute(self, name: str, *overrides: str, parent_run_id: Optional[str] = None):
        from diffexp.config import compose, to_config
        from diffexp.run import execute

        run_dir = self.root / name
        cfg = to_config(compose([*overrides, f"tracking.uri={self.uri}", f"output_dir={run_dir}"]))
        self.outcomes[name] = execute(cfg, run_dir, parent_run_id=parent_run_id)
        return self.outcomes[name]

    def run_id(self, name: str) -> str:
        return self.outcomes[name].run_id

    def run(self, name: str):
        return self.client.get_run(self.run_id(name))

    def output(self, name: str, filename: str) -> Path:
        return self.root / name / "outputs" / filename

    def review_artifacts(self, name: str) -> set[str]:
        return {a.path for a in self.client.list_artifacts(self.run_id(name), "review")}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    return Store(tmp_path_factory.mktemp("review"))
