"""One sweep point: a child run of the sweep's parent. A failed point is recorded, never raised,
so Hydra's launcher goes on to the next point."""

from __future__ import annotations

import dataclasses
import json
import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from diffexp import names
from diffexp.config import Config, to_config
from diffexp.errors import RunInterrupted
from diffexp.sweeps.handoff import SweepInfo, point_overrides

log = logging.getLogger(__name__)

LEASE_WAIT_S = 24 * 3600


def attach(cfg: Config, info: SweepInfo, point: int, overrides: list[str]) -> None:
    """Make the run a child of the parent: same store, same experiment, tags that find the point."""
    cfg.tracking.uri = cfg.tracking.uri or info.tracking_uri
    cfg.tracking.experiment = cfg.tracking.experiment or info.experiment
    cfg.sweep = cfg.sweep or info.name
    cfg.tracking.run_name = cfg.tracking.run_name or point_name(cfg, overrides)
    baseline = info.is_baseline(point, overrides)
    # The correctness review finds the sweep's reference by review.baseline (review.reference=sweep:baseline).
    cfg.review.baseline = cfg.review.baseline or baseline
    cfg.tracking.tags.update(
        {
            names.SWEEP_ROLE: "point",
            names.SWEEP_POINT: str(point),
            names.SWEEP_BASELINE: str(baseline).lower(),
            names.SWEEP_OVERRIDES: json.dumps(overrides),
        }
    )


def point_name(cfg: Config, overrides: list[str]) -> str:
    """The point's run name: the model and the swept values, e.g. `tiny_flux · seed=2 · num_inference_steps=8`."""
    parts = [cfg.model.name]
    for override in overrides:
        key, _, value = override.partition("=")
        if key != "model":  # already first
            parts.append(f"{key.lstrip('+~').rsplit('.', 1)[-1]}={value}")
    return " · ".join(parts)


def gpu_lease_for(cfg: Config):
    """Lease GPUs for this point when the engine would otherwise pick them itself."""
    from diffexp.sweeps.gpu_lease import lease, needs_lease, visible_gpu_ids

    if not needs_lease(cfg.engine.name, cfg.engine.device, cfg.engine.gpus, cfg.engine.dry_run):
        return nullcontext(None)
    # Points queue for GPUs as long as the launcher lets them live (its own timeout ends the wait).
    return lease(cfg.parallel.num_gpus, visible_gpu_ids(), timeout_s=LEASE_WAIT_S)


def run_point(cfg: DictConfig) -> Optional[str]:
    """Run this Hydra job as a sweep point; returns the run's status (None for a dry run)."""
    from diffexp.run import execute, print_summary

    hydra_cfg = HydraConfig.get()
    point = int(hydra_cfg.job.num)
    info = SweepInfo.read(hydra_cfg.sweep.dir)
    overrides = point_overrides(hydra_cfg.overrides.task, info.swept_keys if info else [])
    label = " ".join(overrides) or f"point {point}"
    config: Optional[Config] = None
    try:
        config = to_config(cfg)
        if info is not None:
            attach(config, info, point, overrides)
        with gpu_lease_for(config) as gpus:
            if gpus:
                config.engine.gpus = ",".join(gpus)
            outcome = execute(config, Path(hydra_cfg.runtime.output_dir), parent_run_id=info.run_id if info else None)
    except (KeyboardInterrupt, RunInterrupted):
        raise  # stop the whole sweep; the run (if any) is already KILLED
    except Exception as exc:
        log.error("sweep point %d (%s) failed: %s", point, label, exc)
        if info is not None:
            _record_failure(config, info, point, overrides, exc)
        return "FAILED"
    if outcome is None:
        return None
    print_summary(outcome)
    if outcome.status != "FINISHED":
        log.error("sweep point %d (%s) ended %s", point, label, outcome.status)
    return outcome.status


def _record_failure(
    config: Optional[Config], info: SweepInfo, point: int, overrides: list[str], exc: Exception
) -> None:
    """A point that failed before its run existed (bad input file, no GPUs, …) still becomes a FAILED child."""
    from diffexp.tracking.records import has_point
    from diffexp.tracking.store import client_for

    try:
        store = client_for(info.tracking_uri)
        if has_point(store, info.experiment, info.run_id, point):
            return  # execute() created the run and already marked it FAILED
        _failed_child(config, info, point, overrides, exc)
    except Exception as record_exc:  # the store itself is unreachable: the log is all we have
        log.error("could not record failed point %d in MLflow: %s", point, record_exc)


def _failed_child(config: Optional[Config], info: SweepInfo, point: int, overrides: list[str], exc: Exception) -> None:
    from diffexp.config.schema import TrackingConfig
    from diffexp.tracking.naming import run_name, run_tags
    from diffexp.tracking.params import flatten
    from diffexp.tracking.writer import RunRecorder

    if config is not None:
        tracking, params, tags, name = (
            config.tracking,
            flatten(dataclasses.asdict(config)),
            run_tags(config),
            config.tracking.run_name or run_name(config),
        )
    else:  # the config did not even convert: keep what identifies the point
        tracking = TrackingConfig(uri=info.tracking_uri, experiment=info.experiment)
        params, name = {}, f"point {point}"
        tags = {
            "sweep": info.name,
            names.SWEEP_ROLE: "point",
            names.SWEEP_POINT: str(point),
            names.SWEEP_BASELINE: str(info.is_baseline(point, overrides)).lower(),
            names.SWEEP_OVERRIDES: json.dumps(overrides),
        }
    recorder = RunRecorder(
        tracking.uri, experiment=info.experiment, run_name=name, params=params, tags=tags, parent_run_id=info.run_id
    )
    try:
        with recorder:
            raise exc
    except Exception:
        pass  # recorded: FAILED, with traceback.txt and the `error` tag
