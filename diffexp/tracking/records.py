"""Read side of MLflow for sweeps, compare and report: find runs and turn them back into RunResults."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Optional

from mlflow import MlflowClient

from diffexp import names
from diffexp.errors import DiffexpError
from diffexp.names import STEP_SERIES
from diffexp.results import RunResult
from diffexp.tracking.queries import LoggedRun, search_runs
from diffexp.tracking.queries import get_run as logged_run

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class RecordedRun:
    """One MLflow run as the consumers need it: its RunResult plus identity, params and tags."""

    run_id: str
    name: str
    status: str
    start_time: int
    experiment_id: str
    params: dict[str, str]
    tags: dict[str, str]
    result: RunResult
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def correctness(self) -> str:
        """pass | fail | unchecked, as set by the correctness review (absent: unchecked)."""
        return self.tags.get("correctness", "unchecked")

    @property
    def point(self) -> Optional[int]:
        value = self.tags.get(names.SWEEP_POINT)
        return int(value) if value is not None else None


def result_from_metrics(metrics: dict[str, float], step_ms: list[float]) -> RunResult:
    """Inverse of RunResult.metrics() for the figures reports use."""
    return RunResult(
        denoise_s=metrics.get("denoise_s"),
        denoise_step_ms=step_ms,
        text_encode_s=metrics.get("text_encode_s"),
        vae_decode_s=metrics.get("vae_decode_s"),
        e2e_s=metrics.get("e2e_s"),
        peak_mem_gib=metrics.get("peak_mem_gib"),
        peak_mem_gib_per_device={
            k[len("peak_mem_gib.") :]: v for k, v in metrics.items() if k.startswith("peak_mem_gib.")
        },
        stages_s={k[len("stage_s.") :]: v for k, v in metrics.items() if k.startswith("stage_s.")},
    )


def recorded(client: MlflowClient, run: LoggedRun, with_steps: bool = True) -> RecordedRun:
    metrics = dict(run.metrics)
    metrics.pop(STEP_SERIES, None)  # latest value only; the series is read in full below
    steps: list[float] = []
    if with_steps:
        history = client.get_metric_history(run.run_id, STEP_SERIES)
        steps = [m.value for m in sorted(history, key=lambda m: m.step)]
    return RecordedRun(
        run_id=run.run_id,
        name=run.tags.get("mlflow.runName", ""),
        status=run.status,
        start_time=run.start_time_ms,
        experiment_id=run.experiment_id,
        params=dict(run.params),
        tags=dict(run.tags),
        result=result_from_metrics(metrics, steps),
        metrics=metrics,
    )


def search(client: MlflowClient, filter_string: str, experiment_ids: Optional[list[str]] = None) -> list[RecordedRun]:
    """Every matching active run, newest first (without step series)."""
    found = search_runs(client, filter_string, order_by=["attributes.start_time DESC"], experiment_ids=experiment_ids)
    return [recorded(client, r, with_steps=False) for r in found]


def get_run(client: MlflowClient, run_id: str, with_steps: bool = True) -> RecordedRun:
    return recorded(client, logged_run(client, run_id), with_steps)


def find_parent(client: MlflowClient, ref: str) -> RecordedRun:
    """A sweep parent by run id, by run name, or by sweep name (the latest such sweep)."""
    if _RUN_ID.match(ref):
        return get_run(client, ref, with_steps=False)
    role = f"tags.`{names.SWEEP_ROLE}` = 'parent'"
    for condition in (f"attributes.run_name = '{ref}'", f"tags.`{names.SWEEP}` = '{ref}'"):
        found = search(client, f"{role} and {condition}")
        if found:
            return found[0]
    raise DiffexpError(
        f"sweep={ref}: no sweep parent run with this id, run name or sweep name in {client.tracking_uri}"
    )


def children(client: MlflowClient, parent: RecordedRun) -> list[RecordedRun]:
    """The sweep's points in launch order (failed ones included)."""
    runs = search_runs(client, f"tags.mlflow.parentRunId = '{parent.run_id}'", experiment_ids=[parent.experiment_id])
    points = [recorded(client, r) for r in runs]
    return sorted(points, key=lambda r: (r.point if r.point is not None else 1 << 30, r.start_time))


def has_point(client: MlflowClient, experiment: str, parent_run_id: str, point: int) -> bool:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return False
    found = search(
        client,
        f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.`{names.SWEEP_POINT}` = '{point}'",
        [exp.experiment_id],
    )
    return bool(found)


def parse_point_overrides(tag: Optional[str]) -> dict[str, str]:
    """The names.SWEEP_OVERRIDES value → {"model": "tiny_wan", "+recipe": "flux1_dev"} (values as written)."""
    out = {}
    for item in json.loads(tag) if tag else []:
        key, _, value = item.partition("=")
        out[key] = value
    return out
