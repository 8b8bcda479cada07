"""Engines turn a validated Config into a RunResult. They never import MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from diffexp.config.schema import Config
from diffexp.results import RunResult


class Engine(Protocol):
    def run(self, cfg: Config, run_dir: Path) -> RunResult: ...

    def dry_run_text(self, cfg: Config) -> str: ...


def get_engine(name: str) -> Engine:
    # Imported lazily: the SGLang engine must work without torch/diffusers loaded, and vice versa.
    if name == "diffusers":
        from diffexp.engines.diffusers import DiffusersEngine

        return DiffusersEngine()
    if name == "sglang":
        from diffexp.engines.sglang import SGLangEngine

        return SGLangEngine()
    raise ValueError(f"engine.name={name!r}")
