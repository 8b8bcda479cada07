"""What a sweep's jobs need from its parent run, handed over as a file in the Hydra sweep dir.

The callback writes `sweep_parent.json` before any job starts; each job reads it. A file works for
every launcher: the basic launcher runs jobs in-process, submitit runs them on other machines that
share the sweep dir.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

HANDOFF_FILE = "sweep_parent.json"


@dataclass
class SweepInfo:
    name: str
    run_id: str
    tracking_uri: str
    experiment: str
    sweep_dir: str
    # Override keys that take more than one value in this sweep (e.g. "model", "+recipe").
    swept_keys: list[str] = field(default_factory=list)
    # Overrides naming the baseline point (all must match); empty: the first point is the baseline.
    baseline: list[str] = field(default_factory=list)

    def write(self) -> Path:
        path = Path(self.sweep_dir) / HANDOFF_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, sweep_dir: Path | str) -> Optional[SweepInfo]:
        path = Path(sweep_dir) / HANDOFF_FILE
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text()))

    def is_baseline(self, point: int, overrides: Sequence[str]) -> bool:
        if self.baseline:
            return set(self.baseline) <= set(overrides)
        return point == 0


def swept_keys(overrides: Iterable[str]) -> list[str]:
    """Keys of the overrides that sweep over more than one value (`a=1,2`, `range(...)`, `choice(...)`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys: list[str] = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.get_key_element()
        if override.is_sweep_override() and key not in keys:
            keys.append(key)
        elif not override.is_sweep_override() and key in keys:
            keys.remove(key)  # a later single value (the command line) replaces the sweep's list
    return keys


def point_overrides(task_overrides: Iterable[str], keys: Sequence[str]) -> list[str]:
    """The job's overrides for the swept keys, in sweep order: what tells this point from the others."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    chosen = {}
    for override in OverridesParser.create().parse_overrides(list(task_overrides)):
        key = override.get_key_element()
        if key in keys:
            chosen[key] = f"{key}={override.get_value_element_as_str()}"
    return [chosen[k] for k in keys if k in chosen]
