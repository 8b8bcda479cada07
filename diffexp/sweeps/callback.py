"""Hydra callback: a multirun becomes one MLflow parent run; its summary and charts are logged when it ends.

Registered in conf/config.yaml under `hydra.callbacks`. It runs where the sweep is launched (never on
submitit's remote nodes): it opens the parent, hands it to the jobs through the sweep dir
(diffexp.sweeps.handoff), and at the end counts passed/failed children and logs the report.
"""

from __future__ import annotations

import atexit
import json
import logging
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from diffexp.sweeps.handoff import SweepInfo, swept_keys
from diffexp.tracking import names

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

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from diffexp.environment import environment_tags
        from diffexp.tracking.writer import RunRecorder

        if OmegaConf.select(config, "engine.dry_run") or not OmegaConf.select(config, "tracking.enabled", default=True):
            return  # nothing runs, or nothing is tracked: no parent run
        name = OmegaConf.select(config, "sweep") or ADHOC_NAME
        sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        overrides = sweep_overrides(config)
        keys = swept_keys(overrides)
        tracking = OmegaConf.to_object(config.tracking)
        experiment = tracking.experiment or f"sweep-{name}"
        self.recorder = RunRecorder(
            tracking.uri,
            experiment=experiment,
            run_name=f"{name} · {sweep_dir.name}",
            params={f"sweep.{k.lstrip('+~')}": o.partition("=")[2] for k, o in _by_key(overrides, keys).items()},
            tags={
                **environment_tags(),
                **dict(tracking.tags),
                names.SWEEP: name,
                names.SWEEP_ROLE: "parent",
                names.SWEEP_DIR: str(sweep_dir),
                names.SWEEP_OVERRIDES: json.dumps(overrides),
                names.SWEEP_KEYS: json.dumps(keys),
            },
        )
        self.info = SweepInfo(
            name=name,
            run_id=self.recorder.run_id,
            tracking_uri=self.recorder.uri,
            experiment=experiment,
            sweep_dir=str(sweep_dir),
            swept_keys=keys,
            baseline=_baseline(config),
        )
        self.info.write()
        atexit.register(self._abandon)
        log.info(
            "sweep %s: parent run %s in %s (swept: %s)",
            name,
            self.info.run_id,
            self.recorder.uri,
            ", ".join(keys) or "nothing",
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.recorder is None or self.info is None:
            return
        from diffexp.reports.sweep_report import SUMMARY_DIR, write_sweep_report
        from diffexp.tracking.records import get_run

        recorder, self.recorder = self.recorder, None
        atexit.unregister(self._abandon)
        with recorder:  # FINISHED on the way out, FAILED if writing the report raised
            parent = get_run(recorder.client, recorder.run_id, with_steps=False)
            report = write_sweep_report(recorder.client, parent, Path(self.info.sweep_dir) / SUMMARY_DIR)
            recorder.log_artifact(Path(self.info.sweep_dir) / SUMMARY_DIR, SUMMARY_DIR)
            s = report.summary
            compare_url = compare_view_url(recorder.uri, parent.experiment_id, [p.run_id for p in report.points])
            recorder.set_tags(
                {
                    "sweep.compare_url": compare_url,
                    "sweep.points": len(report.points),
                    "sweep.passed": s.passed,
                    "sweep.failed": s.failed,
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
                "sweep %s: %d passed, %d failed; summary in %s",
                self.info.name,
                s.passed,
                s.failed,
                Path(self.info.sweep_dir) / SUMMARY_DIR,
            )
            print(s.to_markdown())
            print(f"compare the points in the MLflow UI: {compare_url}")

    def _abandon(self) -> None:
        """The process is ending before the sweep did (Ctrl-C, a launcher error): never leave the parent RUNNING."""
        if self.recorder is not None:
            self.recorder.client.set_terminated(self.recorder.run_id, status="KILLED")
            self.recorder = None


def _by_key(overrides: list[str], keys: list[str]) -> dict[str, str]:
    """The last override for each swept key (the command line replaces the sweep config's list)."""
    out = {}
    for item in overrides:
        key = item.partition("=")[0]
        if key in keys:
            out[key] = item
    return out


def compare_view_url(tracking_uri: str, experiment_id: str, run_ids: list[str]) -> str:
    """The MLflow UI's compare view on these runs (a local store's UI: `mlflow ui` on its default port)."""
    base = tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    return f"{base}/#/compare-runs?runs={json.dumps(run_ids, separators=(',', ':'))}&experiments={json.dumps([experiment_id])}"
