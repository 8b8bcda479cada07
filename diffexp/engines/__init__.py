"""Engines turn a validated Config into a RunResult. They never import MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from diffexp.config.schema import Config
from diffexp.config.validate import problems as config_problems
from diffexp.errors import ConfigError
from diffexp.results import RunResult


class Engine(Protocol):
    def prepare(self, cfg: Config) -> None:
        """Import what `run` will need (seconds of torch and diffusers), so that it can overlap other start-up work
        (the run's tracking agent opening the store); no device is touched."""

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


def problems(cfg: Config) -> list[str]:
    """What the configured engine cannot run; each engine owns its checks (light modules: no torch imported)."""
    if cfg.engine.name == "diffusers":
        from diffexp.engines.diffusers.checks import problems as engine_problems
    elif cfg.engine.name == "sglang":
        from diffexp.engines.sglang.flags import problems as engine_problems
    else:
        return []  # the config-level check already names the allowed engines
    return engine_problems(cfg)


def validate(cfg: Config) -> None:
    """Everything knowable from the config alone, the config's and the engine's checks together, in one error."""
    found = config_problems(cfg)
    if cfg.engine.name in ("diffusers", "sglang"):
        found += problems(cfg)
    if found:
        raise ConfigError(found)
