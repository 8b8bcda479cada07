"""The one run writer: `RunWriter` writes onto a run (params, tags, metrics, series, artifacts, a RunResult);
`RunRecorder` is a writer that owns its run's life, created here and never left RUNNING."""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from mlflow.utils.time import get_current_time_millis

from diffexp import names, rundir
from diffexp.errors import Reported, RunInterrupted
from diffexp.results import RunResult
from diffexp.supervise import interrupts_deferred
from diffexp.tracking.params import MAX_PARAM_CHARS
from diffexp.tracking.store import client_for, experiment_id

log = logging.getLogger(__name__)

PARENT_TAG = MLFLOW_PARENT_RUN_ID
BATCH = 100  # entries per log_batch call, well inside every store's limits


def _batches(items: list, size: int = BATCH) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def process_tags() -> dict[str, str]:
    """The process that writes a run, so a run left RUNNING by a dead process can be found and closed."""
    import psutil

    me = psutil.Process()
    return {names.PID: str(me.pid), names.PID_START: f"{me.create_time():.3f}", names.HOST: socket.gethostname()}


class RunWriter:
    """Writes onto one existing run: the live run of a command, or one logged earlier."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client = client
        self.run_id = run_id

    @property
    def uri(self) -> str:
        return self.client.tracking_uri

    def log_params(self, params: dict[str, str]) -> None:
        for chunk in _batches([Param(k, v) for k, v in sorted(params.items())]):
            self.client.log_batch(self.run_id, params=chunk)

    def set_tags(self, tags: dict[str, Any]) -> None:
        for chunk in _batches([RunTag(k, str(v)) for k, v in tags.items()]):
            self.client.log_batch(self.run_id, tags=chunk)

    def delete_tags(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.client.delete_tag(self.run_id, key)

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        now = get_current_time_millis()
        for chunk in _batches([Metric(k, float(v), now, step) for k, v in metrics.items()]):
            self.client.log_batch(self.run_id, metrics=chunk)

    def log_series(self, key: str, values: Iterable[float]) -> None:
        """One value per step (a denoise step, a video frame), step = index."""
        now = get_current_time_millis()
        for chunk in _batches([Metric(key, float(v), now, step) for step, v in enumerate(values)]):
            self.client.log_batch(self.run_id, metrics=chunk)

    def log_artifact(self, path: Path | str, artifact_path: Optional[str] = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        elif path.is_file():
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_result(self, result: RunResult, run_dir: Optional[Path] = None) -> None:
        """Metrics (scalars and the per-step series), tags, outputs and named artifacts, and metrics.json."""
        self.log_metrics(result.metrics())
        self.log_series(names.STEP_SERIES, result.denoise_step_ms)
        # Repeated trials: one step per measured generation (`denoise_s_series`, …) and per replicate.
        for name, values in result.series().items():
            self.log_series(name, values)
        # What the engine settled on after its own rewrites, beside the requested config's params.
        self.log_params({f"{names.RESOLVED_PREFIX}{k}": str(v) for k, v in result.resolved.items()})
        self.set_tags(
            {
                **result.tags,
                names.WARMUP_EXCLUDED: str(result.warmup_excluded).lower(),
                names.PROFILED: str(result.profiled).lower(),
                names.VALID: str(result.valid).lower(),
                **({names.INVALID_REASON: result.invalid_reason} if result.invalid_reason else {}),
            }
        )
        for output in result.outputs:
            self.log_artifact(output, rundir.OUTPUTS)
        for name, path in result.artifacts.items():
            self.log_artifact(path, name if Path(path).is_dir() else None)
        if run_dir is not None:
            self.log_artifact(result.write_json(run_dir / rundir.METRICS_JSON))


class RunRecorder(RunWriter):
    """Creates a run and owns its end: FINISHED, FAILED (an error, or an invalid result) or KILLED (Ctrl-C,
    SIGTERM), with the log and traceback attached. Nothing between create_run and the end escapes this
    guard: a failure while logging the params ends the run FAILED before it propagates."""

    def __init__(
        self,
        tracking_uri: Optional[str],
        experiment: str,
        run_name: str,
        params: dict[str, str],
        tags: dict[str, str],
        parent_run_id: Optional[str] = None,
        log_file: Optional[Path] = None,
    ):
        client = client_for(tracking_uri)
        self.experiment_id = experiment_id(client, experiment)
        all_tags = {**tags, **process_tags(), **({PARENT_TAG: parent_run_id} if parent_run_id else {})}
        run = client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
        super().__init__(client, run.info.run_id)
        self.log_file = log_file
        # Files worth keeping when the run fails (e.g. per-rank logs); attached only if they exist.
        self.failure_artifacts: list[Path] = []
        self.status: Optional[str] = None
        try:
            self.log_params(params)
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def log_result(self, result: RunResult, run_dir: Optional[Path] = None) -> None:
        super().log_result(result, run_dir)
        if not result.valid:  # measured and kept, but not a number to compare (e.g. a silent backend fallback)
            self.status = "FAILED"

    def __enter__(self) -> RunRecorder:
        return self

    def log_prompt(self, prompt: str, run_dir: Path) -> None:
        """The prompt whole, as <run_dir>/prompt.txt and an artifact; tagged when the params hold it cut short."""
        path = run_dir / "prompt.txt"
        path.write_text(prompt)
        self.log_artifact(path)
        if len(prompt) > MAX_PARAM_CHARS:
            self.set_tags({names.PROMPT_TRUNCATED: "true"})

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            status = self.status or "FINISHED"
        elif issubclass(exc_type, (KeyboardInterrupt, RunInterrupted)):
            status = "KILLED"
        else:
            status = "FAILED"
        self.status = status
        with interrupts_deferred() as pending:
            self._end(status, exc_type, exc, tb)
        if pending and exc_type is None:  # the run is recorded; now honour the interrupt
            raise KeyboardInterrupt
        return False

    def _end(self, status: str, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None:
                reported = isinstance(exc, Reported)  # the run's own process failed: its traceback, not the relay's
                # Into run.log too, so the run directory keeps the traceback whatever the store does (a reported
                # failure's process wrote its own there).
                log.error("run %s ends %s", self.run_id, status, exc_info=None if reported else (exc_type, exc, tb))
                # The error tag before any artifact: it lives in the tracking store, which works when the artifact
                # store does not (read-only), so a FAILED run always says why.
                type_name = exc.type_name if reported else exc_type.__name__
                self.set_tags({names.ERROR: f"{type_name}: {exc}"[:5000]})
                text = exc.traceback_text if reported else "".join(traceback.format_exception(exc_type, exc, tb))
                self.log_text(text, "traceback.txt")
                for path in self.failure_artifacts:
                    if path.exists():
                        self.log_artifact(path, path.name if path.is_dir() else None)
            if self.log_file is not None:
                for handler in logging.getLogger().handlers:
                    handler.flush()
                self.log_artifact(self.log_file)
        except Exception:  # a store that fails now (read-only artifacts) must not hide the end
            log.exception("could not attach the failure's files to run %s", self.run_id)
        finally:
            # Whatever happened above, the run must not stay RUNNING.
            self.client.set_terminated(self.run_id, status=status)
