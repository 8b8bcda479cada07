"""One run end to end: validate → check the machine → engine → MLflow. Used by `python -m diffexp` and sweeps."""

from __future__ import annotations

import dataclasses
import logging
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from diffexp import rundir
from diffexp.config import Config, check_launch
from diffexp.engines import get_engine, validate
from diffexp.errors import RunInterrupted
from diffexp.replicates import run_engine
from diffexp.results import RunResult
from diffexp.tracking.naming import run_name, run_tags

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    run_id: str
    tracking_uri: str
    result: Optional[RunResult]
    status: str


@contextmanager
def _run_log(path: Path):
    """Everything logged during the run also goes to the run's own log file."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()


@contextmanager
def _terminate_as_interrupt():
    """SIGTERM (e.g. from a scheduler) ends the run as KILLED, like Ctrl-C does."""

    def handler(signum, frame):
        raise RunInterrupted(f"received signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. a parallel sweep worker): leave signals alone
        yield
        return
    # A process started in the background inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: during a run, an explicit `kill -INT` must still end it as KILLED.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def execute(cfg: Config, run_dir: Path, parent_run_id: Optional[str] = None) -> Optional[Outcome]:
    """Run one composed config. Returns None for a dry run; raises after recording a failed run."""
    validate(cfg)
    from diffexp.review.reference import check_reference  # imports MLflow: only once the config is valid

    check_reference(cfg, parent_run_id)
    check_launch(cfg)
    from diffexp.models.footprint import check_resources  # builds on the meta device: models, not config

    check_resources(cfg)
    if cfg.tracking.enabled and not cfg.engine.dry_run:
        from diffexp.tracking.store import check_usable, resolve_uri

        check_usable(resolve_uri(cfg.tracking.uri))  # seconds, before the model loads: not minutes after
    engine = get_engine(cfg.engine.name)
    if cfg.engine.dry_run:
        print(engine.dry_run_text(cfg))
        return None
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_yaml = run_dir / rundir.CONFIG_YAML
    config_yaml.write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    if not cfg.tracking.enabled:
        return _execute_untracked(cfg, engine, run_dir)
    # MLflow is imported only when a run is tracked (GPU boxes may run untracked without it).
    from diffexp.tracking.writer import RunRecorder, flatten

    _close_orphans(cfg.tracking.uri)

    params = flatten(dataclasses.asdict(cfg))
    with _run_log(run_dir / rundir.RUN_LOG) as log_file, _terminate_as_interrupt():
        recorder = RunRecorder(
            cfg.tracking.uri,
            experiment=cfg.tracking.experiment or cfg.model.name,
            run_name=cfg.tracking.run_name or run_name(cfg),
            params=params,
            tags=run_tags(cfg),
            parent_run_id=parent_run_id,
            log_file=log_file,
        )
        log.info("MLflow run %s in %s", recorder.run_id, recorder.uri)
        recorder.failure_artifacts = [run_dir / rundir.RANKS, run_dir / rundir.SGLANG_LOG]
        with recorder:
            recorder.log_artifact(config_yaml)
            recorder.log_prompt(cfg.model.sampling.prompt, run_dir)
            result = _measure(cfg, engine, run_dir)
            recorder.log_result(result, run_dir)
            from diffexp.review import review_run  # imports MLflow, like the tracking import above

            # After log_result, so a review that cannot be done never loses the run's measurements.
            review_run(cfg, result, recorder, run_dir)
            if not result.valid:  # log_result marked the run FAILED
                log.error("run is not valid: %s", result.invalid_reason)
    return Outcome(recorder.run_id, recorder.uri, result, recorder.status or "FINISHED")


def _measure(cfg: Config, engine, run_dir: Path) -> RunResult:
    """The engine's run (or its replicates), then its profile read (the engine only leaves the trace or report),
    then the floor it is judged against (measure.floor=true; after the profile, whose categories give the gaps)."""
    result = run_engine(cfg, engine, run_dir)
    if result.profiled or cfg.profile.mode != "off":
        from diffexp.profile.of_run import analyze_run_profile

        analyze_run_profile(cfg, result, run_dir)
    if cfg.measure.floor:
        from diffexp.floor.of_run import add_floor  # builds the pipeline again: only when asked

        add_floor(cfg, result, run_dir)
    return result


def _close_orphans(uri: Optional[str]) -> None:
    """Runs this host left RUNNING when their process died (SIGKILL, OOM) are ended FAILED before a new one starts."""
    from diffexp.tracking.reconcile import close_orphans
    from diffexp.tracking.store import client_for

    try:
        close_orphans(client_for(uri))
    except Exception as exc:  # a store that cannot be searched now must not stop the run
        log.warning("could not look for runs left RUNNING by dead processes: %s", exc)


def _execute_untracked(cfg: Config, engine, run_dir: Path) -> Outcome:
    """tracking.enabled=false: the same run, figures only in <run_dir>/metrics.json (ingest them later)."""
    with _run_log(run_dir / rundir.RUN_LOG), _terminate_as_interrupt():
        result = _measure(cfg, engine, run_dir)
        # Keep the machine's description with the figures: they may be uploaded from elsewhere.
        result.tags = {**run_tags(cfg), **result.tags}  # run_tags include environment_tags()
        result.write_json(run_dir / rundir.METRICS_JSON)
    return Outcome("untracked", str(run_dir / rundir.METRICS_JSON), result, "FINISHED" if result.valid else "FAILED")


def print_summary(outcome: Outcome) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"run {outcome.run_id} ({outcome.status})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in (outcome.result.metrics() if outcome.result else {}).items():
        table.add_row(key, f"{value:.4g}")
    console.print(table)
    # Plain prints: paths must not be wrapped, so they can be copied.
    if outcome.run_id == "untracked":
        print(f"not tracked; figures in {outcome.tracking_uri}")
        return
    from diffexp.tracking.store import ui_hint

    print(f"logged to {outcome.tracking_uri} (run {outcome.run_id})")
    print(f"see it with: {ui_hint(outcome.tracking_uri)}")
