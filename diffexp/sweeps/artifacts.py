"""A sweep's report files (summary CSV/markdown and charts), built from MLflow alone.

Used when the sweep ends (logged to the parent run) and by `python -m diffexp.report sweep=…`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient

from diffexp.sweeps.charts import write_charts
from diffexp.sweeps.handoff import TAG_KEYS
from diffexp.sweeps.queries import RecordedRun, children
from diffexp.sweeps.summary import SweepSummary, summarize

SUMMARY_DIR = "summary"  # artifact path on the parent run


@dataclass
class SweepReport:
    parent: RecordedRun
    points: list[RecordedRun]
    summary: SweepSummary
    files: list[Path]


def write_sweep_report(client: MlflowClient, parent: RecordedRun, directory: Path) -> SweepReport:
    points = children(client, parent)
    keys = json.loads(parent.tags.get(TAG_KEYS, "[]"))
    summary = summarize(points, keys)
    files = list(summary.write(directory).values())
    files += write_charts(points, summary, directory / "charts", title=parent.name)
    return SweepReport(parent, points, summary, files)
