"""The tracking half of one run: open its MLflow record, log what it was given, record its result and review it.
The same steps whether they run in the run's own process or in its tracking agent (diffexp/run/agent.py)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Optional

from diffexp import rundir
from diffexp.config import Config
from diffexp.results import RunResult
from diffexp.tracking.naming import run_name, run_tags
from diffexp.tracking.params import flatten
from diffexp.tracking.writer import RunRecorder

log = logging.getLogger(__name__)


def close_orphans(uri: Optional[str]) -> None:
    """Runs this host left RUNNING when their process died (SIGKILL, OOM) are ended FAILED before a new one starts."""
    from diffexp.tracking.reconcile import close_orphans as close
    from diffexp.tracking.store import client_for

    try:
        close(client_for(uri))
    except Exception as exc:  # a store that cannot be searched now must not stop the run
        log.warning("could not look for runs left RUNNING by dead processes: %s", exc)


def open_run(cfg: Config, run_dir: Path, parent_run_id: Optional[str], log_file: Optional[Path]) -> RunRecorder:
    """The run's record, RUNNING, with its params and tags; enter it (`with`) before anything else can fail."""
    recorder = RunRecorder(
        cfg.tracking.uri,
        experiment=cfg.tracking.experiment or cfg.model.name,
        run_name=cfg.tracking.run_name or run_name(cfg),
        params=flatten(dataclasses.asdict(cfg)),
        tags=run_tags(cfg),
        parent_run_id=parent_run_id,
        log_file=log_file,
    )
    recorder.failure_artifacts = [run_dir / rundir.RANKS, run_dir / rundir.SGLANG_LOG]
    return recorder


def log_inputs(recorder: RunRecorder, cfg: Config, run_dir: Path) -> None:
    """What the run was given: its config.yaml and its whole prompt."""
    recorder.log_artifact(run_dir / rundir.CONFIG_YAML)
    recorder.log_prompt(cfg.model.sampling.prompt, run_dir)


def record_result(recorder: RunRecorder, cfg: Config, result: RunResult, run_dir: Path) -> None:
    """The measurements first, then the review: a review that cannot be done never loses the measurements."""
    recorder.log_result(result, run_dir)
    from diffexp.review import review_run

    review_run(cfg, result, recorder, run_dir)
    if not result.valid:  # log_result marked the run FAILED
        log.error("run is not valid: %s", result.invalid_reason)
