"""Building and loading pipelines: built-in tiny models, full-size random-weight architectures, real checkpoints."""

from diffexp.models.load import load_pipeline
from diffexp.models.tiny import ensure_tiny_checkpoint

__all__ = ["load_pipeline", "ensure_tiny_checkpoint"]
