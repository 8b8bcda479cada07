"""Registers the schema with Hydra's ConfigStore and turns composed configs into typed objects."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from diffexp.config.keys import unknown_keys
from diffexp.config.run_dir import register_resolver
from diffexp.config.schema import Config
from diffexp.errors import ConfigError

# conf/ and multirun_sweeps/ live at the repository root, next to the package (editable install).
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
SWEEPS_DIR = Path(__file__).resolve().parents[2] / "multirun_sweeps"
SWEEPS_DIR_ENV = "DIFFEXP_SWEEPS_DIR"

_registered = False


def register() -> None:
    """Make `base_config` available so YAML options merge onto typed dataclasses (typos fail)."""
    global _registered
    if _registered:
        return
    # conf/config.yaml puts ${oc.env:DIFFEXP_SWEEPS_DIR} on Hydra's search path: sweep options live in
    # multirun_sweeps/, findable from any working directory.
    os.environ.setdefault(SWEEPS_DIR_ENV, str(SWEEPS_DIR))
    register_resolver()
    ConfigStore.instance().store(name="base_config", node=Config)
    _registered = True


# Prompts are data: `${oc.env:HOME}` in one is text to generate from, never an interpolation to resolve.
LITERAL_FIELDS = ("prompt", "negative_prompt")


def _literal_prompts(cfg: DictConfig) -> None:
    """Escape `${` in the prompt fields (in place), so converting the config keeps their text as typed."""
    sampling = OmegaConf.select(cfg, "model.sampling")
    if not isinstance(sampling, DictConfig):
        return
    for key in LITERAL_FIELDS:
        node = sampling._get_node(key)
        raw = None if node is None else node._value()
        if isinstance(raw, str) and "${" in raw:
            sampling[key] = raw.replace("\\${", "${").replace("${", "\\${")


def to_config(cfg: DictConfig) -> Config:
    """Resolve interpolations and convert to the dataclass tree the rest of the code trusts.

    Raises ConfigError for keys the schema does not declare (see diffexp.config.keys)."""
    problems = unknown_keys(cfg)
    if problems:
        raise ConfigError(problems)
    _literal_prompts(cfg)
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


def load_config_yaml(path: Path) -> Config:
    """A run's recorded config.yaml back into a typed Config (validated against the schema on the way)."""
    cfg = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(path))
    _literal_prompts(cfg)
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


def compose(overrides: Sequence[str] = (), config_name: str = "config", return_hydra: bool = False) -> DictConfig:
    """Compose a run config outside `@hydra.main` (tests, report tools).

    `output_dir` defaults to the current directory unless an `output_dir=` override is given,
    since there is no Hydra job (and so no runtime output dir) to interpolate. `return_hydra` keeps
    the `hydra` node (what a Hydra callback is given).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra)
    if not any(o.startswith("output_dir=") for o in overrides):
        cfg.output_dir = "."
    return cfg
