"""A sweep's parent run: made from the sweep's composed multirun config (live by the Hydra callback, or later from
its multirun.yaml by the uploader), and ended with the sweep's summary, charts and counts."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from diffexp import names
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
