"""The read side: find logged runs and download their outputs, as plain `LoggedRun` records for consumers."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID as PARENT_TAG

from diffexp import names, rundir
from diffexp.errors import DiffexpError

log = logging.getLogger(__name__)

# Enough for any store we search by model or sweep; beyond this the newest runs win.
MAX_SEARCHED_RUNS = 5000


@dataclass
class LoggedRun:
    """What consumers need to know about a logged run, without MLflow's entity types."""

    run_id: str
    experiment_id: str
    status: str
    start_time_ms: int
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def parent_run_id(self) -> Optional[str]:
        return self.tags.get(PARENT_TAG)


def _logged(run) -> LoggedRun:
    return LoggedRun(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        status=run.info.status,
        start_time_ms=run.info.start_time or 0,
        params=dict(run.data.params),
        tags=dict(run.data.tags),
        metrics=dict(run.data.metrics),
    )


def get_run(client: MlflowClient, run_id: str) -> LoggedRun:
    try:
        return _logged(client.get_run(run_id))
    except MlflowException as exc:
        raise DiffexpError(f"MLflow run {run_id!r} not found in {client.tracking_uri}: {exc.message}") from exc


def _active_experiment_ids(client: MlflowClient) -> list[str]:
    ids: list[str] = []
    token = None
    while True:
        page = client.search_experiments(view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        ids += [e.experiment_id for e in page]
        token = page.token
        if not token:
            return ids


def search_runs(
    client: MlflowClient,
    filter_string: str,
    order_by: Optional[list[str]] = None,
    experiment_ids: Optional[Iterable[str]] = None,
) -> list[LoggedRun]:
    """Active runs matching an MLflow filter, in every active experiment unless `experiment_ids` is given."""
    ids = list(experiment_ids) if experiment_ids is not None else _active_experiment_ids(client)
    if not ids:
        return []
    found: list[LoggedRun] = []
    token = None
    while len(found) < MAX_SEARCHED_RUNS:
        page = client.search_runs(ids, filter_string, ViewType.ACTIVE_ONLY, 1000, order_by, token)
        found += [_logged(r) for r in page]
        token = page.token
        if not token:
            break
    return found


def sweep_points(client: MlflowClient, parent_run_id: str) -> list[LoggedRun]:
    """The runs of a sweep (children of its parent run), oldest first."""
    return search_runs(client, f"tags.`{PARENT_TAG}` = '{parent_run_id}'", order_by=["attributes.start_time ASC"])


def runs_of_model(client: MlflowClient, model: str) -> list[LoggedRun]:
    """FINISHED runs tagged with this model, newest first."""
    quoted = model.replace("'", "\\'")
    return search_runs(
        client,
        f"tags.{names.MODEL} = '{quoted}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )


def download_outputs(client: MlflowClient, run_id: str, dst: Path) -> list[Path]:
    """The run's generated outputs (artifact folder `outputs/`), downloaded under `dst`."""
    try:
        items = client.list_artifacts(run_id, rundir.OUTPUTS)
        if not items:
            raise DiffexpError(f"run {run_id} has no logged outputs (no artifacts under outputs/)")
        dst.mkdir(parents=True, exist_ok=True)
        local = Path(client.download_artifacts(run_id, rundir.OUTPUTS, str(dst)))
    except MlflowException as exc:
        raise DiffexpError(f"cannot download the outputs of run {run_id}: {exc.message}") from exc
    return sorted(local.iterdir())
