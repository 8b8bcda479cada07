"""The only module that talks to MLflow: one run per composed config, never left RUNNING."""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path
from typing import Any, Optional

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.time import get_current_time_millis

from diffexp.config.schema import TrackingConfig
from diffexp.errors import RunInterrupted
from diffexp.results import RunResult

log = logging.getLogger(__name__)

MAX_PARAM_CHARS = 6000
BATCH = 100
# The per-step denoise times, one MLflow metric step per denoise step.
STEP_SERIES = "denoise_step_ms_series"


def default_store_dir() -> Path:
    return Path.cwd() / "mlruns"


def resolve_uri(tracking: TrackingConfig) -> str:
    """The configured URI, or a SQLite store under ./mlruns that needs no server and no set-up."""
    if tracking.uri:
        return tracking.uri
    root = default_store_dir()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def ui_hint(uri: str) -> str:
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    return f"mlflow ui --backend-store-uri {uri}  (then open http://127.0.0.1:5000)"


def client_for(tracking: TrackingConfig) -> MlflowClient:
    uri = resolve_uri(tracking)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(client: MlflowClient, name: str) -> str:
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    uri = client.tracking_uri
    location = None
    if uri.startswith("sqlite:///"):
        # Keep artifacts next to the database rather than wherever the process happens to run.
        location = (Path(uri[len("sqlite:///") :]).parent / "artifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # created concurrently by another run
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts → dotted keys; lists and scalars → strings (MLflow params are strings)."""
    if isinstance(tree, dict):
        out: dict[str, str] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    value = json.dumps(tree) if isinstance(tree, (list, tuple)) else str(tree)
    return {prefix[:-1]: value[:MAX_PARAM_CHARS]}


class RunRecorder:
    """Context manager around one MLflow run: status FINISHED, FAILED or KILLED on exit, log attached."""

    def __init__(
        self,
        tracking: TrackingConfig,
        experiment: str,
        run_name: str,
        params: dict[str, str],
        tags: dict[str, str],
        parent_run_id: Optional[str] = None,
        log_file: Optional[Path] = None,
    ):
        self.client = client_for(tracking)
        self.uri = self.client.tracking_uri
        self.experiment_id = experiment_id(self.client, experiment)
        all_tags = dict(tags)
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
        self.run_id = run.info.run_id
        self.log_file = log_file
        # Files worth keeping when the run fails (e.g. per-rank logs); attached only if they exist.
        self.failure_artifacts: list[Path] = []
        self.status: Optional[str] = None
        self._log_params(params)

    def _log_params(self, params: dict[str, str]) -> None:
        items = [Param(k, v) for k, v in sorted(params.items())]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + BATCH])

    def set_tags(self, tags: dict[str, str]) -> None:
        items = [RunTag(k, str(v)) for k, v in tags.items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, tags=items[i : i + BATCH])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        now = get_current_time_millis()
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, metrics=items[i : i + BATCH])

    def log_artifact(self, path: Path | str, artifact_path: Optional[str] = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        elif path.is_file():
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_result(self, result: RunResult, run_dir: Optional[Path] = None) -> None:
        """Metrics (scalars and the per-step series), tags, outputs and named artifacts, and metrics.json."""
        self.log_metrics(result.metrics())
        now = get_current_time_millis()
        series = [Metric(STEP_SERIES, ms, now, i) for i, ms in enumerate(result.denoise_step_ms)]
        # Repeated trials: one step per measured generation (`denoise_s_series`, …) and per replicate.
        series += [Metric(name, v, now, i) for name, values in result.series().items() for i, v in enumerate(values)]
        for i in range(0, len(series), BATCH):
            self.client.log_batch(self.run_id, metrics=series[i : i + BATCH])
        self.set_tags(
            {
                **result.tags,
                "warmup_excluded": str(result.warmup_excluded).lower(),
                "profiled": str(result.profiled).lower(),
                "valid": str(result.valid).lower(),
                **({"invalid_reason": result.invalid_reason} if result.invalid_reason else {}),
            }
        )
        for output in result.outputs:
            self.log_artifact(output, "outputs")
        for name, path in result.artifacts.items():
            self.log_artifact(path, name if Path(path).is_dir() else None)
        if run_dir is not None:
            self.log_artifact(result.write_json(run_dir / "metrics.json"))
        if not result.valid:  # measured and kept, but not a number to compare (e.g. a silent backend fallback)
            self.status = "FAILED"

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            status = self.status or "FINISHED"
        elif issubclass(exc_type, (KeyboardInterrupt, RunInterrupted)):
            status = "KILLED"
        else:
            status = "FAILED"
        try:
            if exc_type is not None:
                text = "".join(traceback.format_exception(exc_type, exc, tb))
                self.client.log_text(self.run_id, text, "traceback.txt")
                self.set_tags({"error": f"{exc_type.__name__}: {exc}"[:5000]})
                for path in self.failure_artifacts:
                    if path.exists():
                        self.log_artifact(path, path.name if path.is_dir() else None)
            if self.log_file is not None:
                for handler in logging.getLogger().handlers:
                    handler.flush()
                self.log_artifact(self.log_file)
        finally:
            # Whatever happened above, the run must not stay RUNNING.
            self.client.set_terminated(self.run_id, status=status)
        return False
