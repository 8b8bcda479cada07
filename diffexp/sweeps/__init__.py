"""Named sweeps: one MLflow parent run per Hydra multirun, one child per point, a summary at the end."""

from __future__ import annotations

import os
from pathlib import Path

# multirun_sweeps/ sits next to conf/ at the repository root (editable install).
SWEEPS_DIR = Path(__file__).resolve().parents[2] / "multirun_sweeps"
SWEEPS_DIR_ENV = "DIFFEXP_SWEEPS_DIR"


def use_sweeps_dir() -> None:
    """conf/config.yaml puts ${oc.env:DIFFEXP_SWEEPS_DIR} on Hydra's search path: point it at multirun_sweeps/."""
    os.environ.setdefault(SWEEPS_DIR_ENV, str(SWEEPS_DIR))
