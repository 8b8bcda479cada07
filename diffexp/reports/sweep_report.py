"""A sweep's report files (summary CSV/markdown and charts), built from MLflow alone.

Used when the sweep ends (logged to the parent run) and by `python -m diffexp.report sweep REF`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from diffexp import names
from diffexp.reports.charts import write_charts
from diffexp.reports.scaling import baseline_of
from diffexp.reports.summary import SweepSummary, summarize
from diffexp.tracking.records import RecordedRun, children, find_parent
from diffexp.tracking.samples import recorded_sample
from diffexp.tracking.store import client_for

if TYPE_CHECKING:
    from mlflow import MlflowClient

SUMMARY_DIR = "summary"  # artifact path on the parent run


@dataclass
class SweepReport:
    parent: RecordedRun
    points: list[RecordedRun]
    summary: SweepSummary
    files: list[Path]


def write_sweep_report(client: MlflowClient, parent: RecordedRun, directory: Path) -> SweepReport:
    points = children(client, parent)
    keys = json.loads(parent.tags.get(names.SWEEP_KEYS, "[]"))
    # The repeats of each point, for the scaling columns' intervals (only where there is a baseline to scale to).
    samples = {p.run_id: recorded_sample(client, p.run_id) for p in points} if baseline_of(points) else {}
    summary = summarize(points, keys, samples)
    files = list(summary.write(directory).values())
    files += write_charts(points, summary, directory / "charts", title=parent.name)
    return SweepReport(parent, points, summary, files)


def rebuild_sweep(ref: str, out: Optional[Path] = None, uri: Optional[str] = None):
    """The sweep's report files, rebuilt from MLflow into `out`; equal to the ones logged when it ended."""
    store = client_for(uri)
    parent = find_parent(store, ref)
    return write_sweep_report(store, parent, out or Path("reports") / parent.run_id)
