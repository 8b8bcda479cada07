"""Hydra callback: a multirun becomes one MLflow parent run; its summary and charts are logged when it ends.

Registered in conf/config.yaml under `hydra.callbacks`. It runs where the sweep is launched (never on
submitit's remote nodes): it opens the parent, hands it to the jobs through the sweep dir
(diffexp.sweeps.handoff), and at the end counts passed/failed children and logs the report.
"""

from __future__ import annotations

import atexit
import logging
import signal
from typing import Any, Optional

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from diffexp.errors import RunInterrupted
from diffexp.sweeps.handoff import SweepInfo
from diffexp.sweeps.parent import open_parent, report_parent

log = logging.getLogger(__name__)


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
