"""Typed run configuration: schema, registration with Hydra, and semantic validation."""

from diffexp.config.schema import (
    AttentionConfig,
    CompileConfig,
    Config,
    EngineConfig,
    KernelsConfig,
    MeasureConfig,
    ModelConfig,
    OffloadConfig,
    ParallelConfig,
    ProfileConfig,
    ReviewConfig,
    SamplingConfig,
    TrackingConfig,
)
from diffexp.config.store import CONF_DIR, compose, register, to_config
from diffexp.config.validate import check_launch, validate

__all__ = [
    "AttentionConfig",
    "CompileConfig",
    "Config",
    "EngineConfig",
    "KernelsConfig",
    "MeasureConfig",
    "ModelConfig",
    "OffloadConfig",
    "ParallelConfig",
    "ProfileConfig",
    "ReviewConfig",
    "SamplingConfig",
    "TrackingConfig",
    "CONF_DIR",
    "compose",
    "register",
    "to_config",
    "validate",
    "check_launch",
]
