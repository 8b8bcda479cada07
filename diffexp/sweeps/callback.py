"""Hydra callback: a multirun becomes one MLflow parent run; its summary and charts are logged when it ends.

Registered in conf/config.yaml under `hydra.callbacks`. It runs where the sweep is launched (never on
submitit's remote nodes): it opens the parent, hands it to the jobs through the sweep dir
(diffexp.sweeps.handoff), and at the end counts passed/failed children and logs the report.
"""

from __future__ import annotations

import atexit
import json
import logging
import signal
from pathlib import Path
from typing import Any, Optional

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from diffexp import names
from diffexp.errors import RunInterrupted
from diffexp.sweeps.handoff import SweepInfo, swept_keys

log = logging.getLogger(__name__)

ADHOC_NAME = "multirun"


def sweep_overrides(config: DictConfig) -> list[str]:
    """What defines the sweep: the sweep config's `hydra.sweeper.params`, then the command line (which wins)."""
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    from_config = [f"{k}={v}" for k, v in params.items()]
    return from_config + list(config.hydra.overrides.task)


def _baseline(config: DictConfig) -> list[str]:
    value = OmegaConf.select(config, "extra.sweep_baseline")
    if not value:
        return []
    return value.split() if isinstance(value, str) else [str(v) for v in value]


class SweepParentCallback(Callback):
    def __init__(self) -> None:
        self.recorder = None
        self.info: Optional[SweepInfo] = None
        # Points that did not finish, counted as their jobs return (in-process launchers) and from the
        # parent's children in MLflow (every launcher); the larger count decides the exit status.
        self.failed_jobs = 0
        self._previous_handlers: dict[int, Any] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _last_failed
        _last_failed = 0
        self._catch_signals()
        if OmegaConf.select(config, "engine.dry_run") or not OmegaConf.select(config, "tracking.enabled", default=True):
            return  # nothing runs, or nothing is tracked: no parent run
        from diffexp.environment import environment_tags

        self.recorder, self.info = open_parent(config, environment_tags())
        _open.append(self)
        log.info(
            "sweep %s: parent run %s in %s (swept: %s)",
            self.info.name,
            self.info.run_id,
            self.recorder.uri,
            ", ".join(self.info.swept_keys) or "nothing",
        )

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status == JobStatus.FAILED or job_return.return_value in ("FAILED", "KILLED"):
            self.failed_jobs += 1

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _last_failed
        self._restore_signals()
        failed = self._close("FINISHED") if self.recorder is not None else 0
        _last_failed = max(failed, self.failed_jobs)

    def abandon(self) -> None:
        """The process is ending before the sweep did (Ctrl-C, SIGTERM, a launcher error): the parent ends
        KILLED with what it has (counts and a summary of the points that ran), never RUNNING."""
        self._restore_signals()
        if self.recorder is not None:
            log.warning("sweep interrupted: ending parent run %s as KILLED", self.recorder.run_id)
            self._close("KILLED")

    def _close(self, status: str) -> int:
        """Log the summary and counts on the parent and end it with `status`; returns the failed count."""
        recorder, self.recorder = self.recorder, None
        if self in _open:
            _open.remove(self)
        if status != "FINISHED":
            recorder.status = status
            try:
                with recorder:
                    return self._report(recorder, interrupted=True)
            except Exception as exc:  # what was logged stays; the parent still ends KILLED (set_terminated)
                log.error("could not write the interrupted sweep's summary: %s", exc)
                return 0
        with recorder:  # FINISHED on the way out, FAILED if writing the report raised
            return self._report(recorder)

    def _report(self, recorder, interrupted: bool = False) -> int:
        assert self.info is not None
        return report_parent(recorder, self.info, interrupted)

    def _catch_signals(self) -> None:
        """SIGTERM between points ends the sweep like Ctrl-C (a run in progress installs its own handler
        and restores this one); SIGINT raises even when the sweep was started in the background."""
        try:
            self._previous_handlers = {
                signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_interrupted),
                signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
            }
        except ValueError:  # not the main thread: leave signals alone
            self._previous_handlers = {}

    def _restore_signals(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}


def open_parent(
    config: DictConfig, tags: dict[str, str], sweep_dir: Optional[Path] = None, handoff: bool = True
) -> tuple[Any, SweepInfo]:
    """The sweep's parent run, created from its composed multirun config (what Hydra saves as multirun.yaml) with
    `tags` beside its own (the machine's environment), and the SweepInfo its jobs read (written to the sweep dir
    with `handoff`). `sweep_dir`: where the sweep's folder is now (default: where Hydra made it)."""
    from diffexp.tracking.writer import RunRecorder

    name = OmegaConf.select(config, "sweep") or ADHOC_NAME
    sweep_dir = (sweep_dir or Path(str(config.hydra.sweep.dir))).resolve()
    overrides = sweep_overrides(config)
    keys = swept_keys(overrides)
    # Read by key: a live sweep's config is typed, a multirun.yaml read back is not.
    experiment = OmegaConf.select(config, "tracking.experiment") or f"sweep-{name}"
    recorder = RunRecorder(
        OmegaConf.select(config, "tracking.uri"),
        experiment=experiment,
        run_name=f"{name} · {sweep_dir.name}",
        params={f"sweep.{k.lstrip('+~')}": o.partition("=")[2] for k, o in _by_key(overrides, keys).items()},
        tags={
            **tags,
            **{str(k): str(v) for k, v in (OmegaConf.select(config, "tracking.tags") or {}).items()},
            names.SWEEP: name,
            names.SWEEP_ROLE: "parent",
            names.SWEEP_DIR: str(sweep_dir),
            names.SWEEP_OVERRIDES: json.dumps(overrides),
            names.SWEEP_KEYS: json.dumps(keys),
        },
    )
    info = SweepInfo(
        name=name,
        run_id=recorder.run_id,
        tracking_uri=recorder.uri,
        experiment=experiment,
        sweep_dir=str(sweep_dir),
        swept_keys=keys,
        baseline=_baseline(config),
    )
    if handoff:
        info.write()
    return recorder, info


def report_parent(recorder, info: SweepInfo, interrupted: bool = False, summary_dir: Optional[Path] = None) -> int:
    """The sweep's summary and charts logged on its parent, with the counts; returns the failed count. The files
    are written to `summary_dir` (default: the sweep dir's summary/) before they are logged."""
    from diffexp.reports.sweep_report import SUMMARY_DIR, write_sweep_report
    from diffexp.tracking.records import get_run

    summary_dir = summary_dir or Path(info.sweep_dir) / SUMMARY_DIR
    parent = get_run(recorder.client, recorder.run_id, with_steps=False)
    report = write_sweep_report(recorder.client, parent, summary_dir)
    recorder.log_artifact(summary_dir, SUMMARY_DIR)
    s = report.summary
    compare_url = compare_view_url(recorder.uri, parent.experiment_id, [p.run_id for p in report.points])
    recorder.set_tags(
        {
            "sweep.compare_url": compare_url,
            "sweep.points": len(report.points),
            "sweep.passed": s.passed,
            "sweep.failed": s.failed,
            **({"sweep.interrupted": "true"} if interrupted else {}),
            **({"sweep.fastest": s.fastest.run_id} if s.fastest else {}),
        }
    )
    recorder.log_metrics(
        {
            "points_passed": s.passed,
            "points_failed": s.failed,
            **({"best_denoise_s": s.fastest.result.denoise_s} if s.fastest else {}),
        }
    )
    log.info(
        "sweep %s%s: %d passed, %d failed; summary in %s",
        info.name,
        " (interrupted)" if interrupted else "",
        s.passed,
        s.failed,
        summary_dir,
    )
    print(s.to_markdown())
    print(f"compare the points in the MLflow UI: {compare_url}")
    return s.failed


def _raise_interrupted(signum, frame):
    raise RunInterrupted(f"received signal {signum}")


# Sweeps whose parent run is open in this process, and the failed count of the last one that ended.
_open: list[SweepParentCallback] = []
_last_failed = 0


def abandon_open_sweeps() -> None:
    """End every open parent KILLED. `python -m diffexp` calls it on Ctrl-C / SIGTERM (it leaves with
    os._exit, which skips atexit); atexit covers any other way out."""
    for callback in list(_open):
        callback.abandon()


atexit.register(abandon_open_sweeps)


def failed_points() -> int:
    """How many points of the sweep that just ended in this process did not finish (0: all passed)."""
    return _last_failed


def _by_key(overrides: list[str], keys: list[str]) -> dict[str, str]:
    """The last override for each swept key (the command line replaces the sweep config's list)."""
    out = {}
    for item in overrides:
        key = item.partition("=")[0]
        if key in keys:
            out[key] = item
    return out


# The port the command below names: the URL is right because the command says the port, not by assumption.
LOCAL_UI_PORT = 5000


def compare_view_url(tracking_uri: str, experiment_id: str, run_ids: list[str]) -> str:
    """The MLflow UI's compare view on these runs, on the store in use: an http(s) store is its own UI server; a
    local store (SQLite, files) has none, so the text says how to start one on it, then the URL to open."""
    view = (
        f"/#/compare-runs?runs={json.dumps(run_ids, separators=(',', ':'))}&experiments={json.dumps([experiment_id])}"
    )
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/") + view
    return (
        f"run `mlflow ui --backend-store-uri {tracking_uri} --port {LOCAL_UI_PORT}`, "
        f"then open http://127.0.0.1:{LOCAL_UI_PORT}{view}"
    )
