"""A config as MLflow params: dotted keys, string values, each cut to what every store accepts. Pure (no MLflow),
so untracked code on a GPU box (the tuner's review gate) reads configs the same way."""

from __future__ import annotations

import json
from typing import Any

MAX_PARAM_CHARS = 6000


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts → dotted keys; lists and scalars → strings (MLflow params are strings)."""
    if isinstance(tree, dict):
        out: dict[str, str] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    value = json.dumps(tree) if isinstance(tree, (list, tuple)) else str(tree)
    return {prefix[:-1]: value[:MAX_PARAM_CHARS]}
