"""One run end to end: validate → check the machine → engine → MLflow (diffexp/run/record.py, in this process or in
the run's tracking agent). Used by `python -m diffexp`, sweeps and the tuner."""

from __future__ import annotations

import logging
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from omegaconf import OmegaConf

from diffexp import names, rundir
from diffexp.config import Config, check_launch
from diffexp.engines import get_engine, validate
from diffexp.errors import DiffexpError, RunInterrupted
from diffexp.logs import quiet_libraries
from diffexp.replicates import run_engine
from diffexp.results import RunResult
from diffexp.tracking.naming import run_tags
from diffexp.tracking.uri import check_usable, resolve_uri, ui_hint

if TYPE_CHECKING:
    from diffexp.run.agent import TrackingAgent

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


# A second Ctrl-C or SIGTERM this soon after the first is held: the run is being ended and recorded. Later, one
# raises again (whatever swallowed the first must not make the run unstoppable).
REPEAT_HELD_S = 60.0


@contextmanager
def _terminate_as_interrupt():
    """SIGTERM (e.g. from a scheduler) ends the run as KILLED, like Ctrl-C does; the first of either raises, a
    repeat within REPEAT_HELD_S is held so that the run's end is written whole."""
    first: list[float] = []

    def handler(signum, frame):
        now = time.monotonic()
        if first and now - first[0] < REPEAT_HELD_S:
            log.warning("signal %d again: the run is being ended and recorded, one moment", signum)
            return
        first[:] = [now]
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise RunInterrupted(f"received signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. a parallel sweep worker): leave signals alone
        yield
        return
    # A process started in the background inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: during a run, an explicit `kill -INT` must still end it as KILLED.
    previous_int = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def execute(
    cfg: Config, run_dir: Path, parent_run_id: Optional[str] = None, *, tracking_agent: bool = False
) -> Optional[Outcome]:
    """Run one composed config. Returns None for a dry run; raises after recording a failed run.

    `tracking_agent`: record the run from a process of its own (diffexp/run/agent.py), started now, so that MLflow's
    import and the store's set-up overlap this process's imports and model load (`python -m diffexp` does; a
    process that runs many, like a sweep, has MLflow loaded already and records in-process)."""
    validate(cfg)
    agent = None
    if tracking_agent and cfg.tracking.enabled and not cfg.engine.dry_run:
        from diffexp.run.agent import TrackingAgent  # not at the top: `python -m diffexp.run.agent` runs it

        agent = TrackingAgent.start(cfg.tracking.uri)
    try:
        return _execute(cfg, Path(run_dir), parent_run_id, agent)
    finally:
        if agent is not None and not agent.done:
            agent.close()  # refused before it started: the agent leaves without a record


def _execute(cfg: Config, run_dir: Path, parent_run_id: Optional[str], agent: Optional[TrackingAgent]):
    quiet_libraries()  # imports diffusers and transformers: seconds, while an agent opens the store
    # A logged run's reference is found now, not after the run (this imports MLflow). An untracked run has nothing
    # to look it up in (a GPU box may lack MLflow): its reference is judged from files (the tuner's gate).
    if cfg.tracking.enabled and (cfg.review.reference or "").strip():
        from diffexp.review.reference import check_reference

        check_reference(cfg, parent_run_id)
    check_launch(cfg)
    from diffexp.models.footprint import check_resources  # builds on the meta device: models, not config

    check_resources(cfg)
    if cfg.tracking.enabled and not cfg.engine.dry_run and agent is None:
        check_usable(resolve_uri(cfg.tracking.uri))  # seconds, before the model loads: not minutes after
    engine = get_engine(cfg.engine.name)
    if cfg.engine.dry_run:
        print(engine.dry_run_text(cfg))
        return None
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / rundir.CONFIG_YAML).write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    if not cfg.tracking.enabled:
        return _execute_untracked(cfg, engine, run_dir)
    if agent is not None:
        return _execute_with_agent(cfg, engine, run_dir, parent_run_id, agent)
    # MLflow is imported only when a run is tracked (GPU boxes may run untracked without it).
    from diffexp.run.record import close_orphans, log_inputs, open_run, record_result

    close_orphans(cfg.tracking.uri)
    with _run_log(run_dir / rundir.RUN_LOG) as log_file, _terminate_as_interrupt():
        recorder = open_run(cfg, run_dir, parent_run_id, log_file)
        log.info("MLflow run %s in %s", recorder.run_id, recorder.uri)
        with recorder:
            log_inputs(recorder, cfg, run_dir)
            result = _measure(cfg, engine, run_dir)
            record_result(recorder, cfg, result, run_dir)
    return Outcome(recorder.run_id, recorder.uri, result, recorder.status or "FINISHED")


def _execute_with_agent(cfg: Config, engine, run_dir: Path, parent_run_id: Optional[str], agent: TrackingAgent):
    """The engine here, the record in the agent: the result goes over as <run_dir>/metrics.json, which also keeps
    the figures if the agent dies (`python -m diffexp.upload RUN_DIR` logs them later)."""
    opened = False
    with _run_log(run_dir / rundir.RUN_LOG), _terminate_as_interrupt():
        try:
            engine.prepare(cfg)  # the engine's imports, while the agent opens the store
            run_id, uri = agent.open(run_dir, parent_run_id)
            opened = True
            log.info("MLflow run %s in %s", run_id, uri)
            result = _measure(cfg, engine, run_dir)
            result_json = result.write_json(run_dir / rundir.METRICS_JSON)
        except BaseException as exc:
            if opened or not isinstance(exc, DiffexpError):
                agent.report(exc)
            raise
        status = agent.finish(result_json)
    return Outcome(run_id, uri, result, status)


def _measure(cfg: Config, engine, run_dir: Path) -> RunResult:
    """The engine's run (or its replicates), then its profile read (the engine only leaves the trace or report),
    then the floor it is judged against (measure.floor=true; after the profile, whose categories give the gaps)."""
    result = run_engine(cfg, engine, run_dir)
    read_profile, floor = result.profiled or cfg.profile.mode != "off", cfg.measure.floor
    if not (read_profile or floor):
        return result
    # The figures are complete here; what follows only reads or adds to them, and takes minutes on a large model (a
    # 28 B Wan's floor). A run cut during it keeps what it measured, in metrics.json (python -m diffexp.upload).
    tags = {**run_tags(cfg), **result.tags}  # the machine's description, read once (git, the GPUs)
    _keep_measured(result, tags, run_dir, "the run is reading its profile or measuring its floor")
    stage = "profile read"
    try:
        if read_profile:
            from diffexp.profile.of_run import analyze_run_profile

            analyze_run_profile(cfg, result, run_dir)
        stage = "floor"
        if floor:
            from diffexp.floor.of_run import add_floor  # builds the pipeline again: only when asked

            add_floor(cfg, result, run_dir)
    except BaseException as exc:
        _keep_measured(result, tags, run_dir, f"the run ended during its {stage}: {type(exc).__name__}: {exc}")
        raise
    return result


def _keep_measured(result: RunResult, tags: dict[str, str], run_dir: Path, incomplete: str) -> None:
    """The measured figures as metrics.json, tagged `incomplete` (a finished run's record replaces them)."""
    kept = RunResult.from_dict(result.to_dict())
    kept.tags = {**tags, names.INCOMPLETE: incomplete}
    kept.write_json(run_dir / rundir.METRICS_JSON)


def _execute_untracked(cfg: Config, engine, run_dir: Path) -> Outcome:
    """tracking.enabled=false: the same run, figures only in <run_dir>/metrics.json (ingest them later)."""
    with _run_log(run_dir / rundir.RUN_LOG), _terminate_as_interrupt():
        result = _measure(cfg, engine, run_dir)
        # Keep the machine's description with the figures: they may be uploaded from elsewhere.
        result.tags = {**run_tags(cfg), **result.tags}  # run_tags include environment_tags()
        result.write_json(run_dir / rundir.METRICS_JSON)
    return Outcome("untracked", str(run_dir / rundir.METRICS_JSON), result, "FINISHED" if result.valid else "FAILED")


# The figures a run is read by, in this order; every metric is in MLflow and metrics.json.
HEADLINE = ("denoise_s", "denoise_step_ms", "text_encode_s", "vae_decode_s", "e2e_s", "peak_mem_gib")


def summary_rows(metrics: dict[str, float]) -> list[tuple[str, str, str, str]]:
    """(figure, median, 95 % interval, n) for the headline figures a run has; a single shot's noise is unknown."""
    rows = []
    for name in HEADLINE:
        if name not in metrics:
            continue
        n = int(metrics.get(f"{name}.n", 1))
        low, high = metrics.get(f"{name}.ci95_low"), metrics.get(f"{name}.ci95_high")
        interval = f"[{low:.4g}, {high:.4g}]" if n > 1 and low is not None and high is not None else "noise unknown"
        rows.append((("★ " if name == "denoise_s" else "") + name, f"{metrics[name]:.4g}", interval, str(n)))
    return rows


def print_summary(outcome: Outcome) -> None:
    from rich.console import Console
    from rich.table import Table

    metrics = outcome.result.metrics() if outcome.result else {}
    table = Table(title=f"run {outcome.run_id} ({outcome.status})")
    for column, justify in (("figure", "left"), ("median", "right"), ("95 % interval", "right"), ("n", "right")):
        table.add_column(column, justify=justify)
    for row in summary_rows(metrics):
        table.add_row(*row)
    Console().print(table)
    if len(metrics) > len(table.rows):
        print(f"{len(metrics) - len(table.rows)} more figures (stages, spreads, steady state) with the run")
    # Plain prints: paths must not be wrapped, so they can be copied.
    if outcome.run_id == "untracked":
        print(f"not tracked; figures in {outcome.tracking_uri}")
        return
    print(f"logged to {outcome.tracking_uri} (run {outcome.run_id})")
    print(f"see it with: {ui_hint(outcome.tracking_uri)}")
