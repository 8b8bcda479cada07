"""Keep third-party chatter out of the run log so the engine's own lines stand out."""

from __future__ import annotations

import logging
import warnings


def quiet_libraries_logging() -> None:
    """Their loggers at WARNING, without importing them."""
    for name in ("transformers", "diffusers", "urllib3", "alembic", "mlflow", "httpx", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.WARNING)


def quiet_libraries() -> None:
    quiet_libraries_logging()
    try:
        import diffusers
        import transformers

        transformers.logging.set_verbosity_error()
        diffusers.utils.logging.set_verbosity_error()
        diffusers.utils.logging.disable_progress_bar()
        transformers.logging.disable_progress_bar()
    except ImportError:
        pass
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*requires torchvision.*")
