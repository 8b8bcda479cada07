"""`python -m diffexp.sweeps.upload SWEEP_DIR… [--tracking-uri URI] [--again]`: log a sweep that ran untracked
(tracking.enabled=false, e.g. on a GPU box without MLflow) into an MLflow store as the live sweep would have
logged it: one parent run made from the sweep's multirun.yaml (its name, overrides and swept keys), one child per
point folder, tagged and named as a live point is, each reviewed against the sweep's reference as a live point is,
then the summary and charts on the parent. A point folder without metrics.json (the point failed, or was cut)
becomes a FAILED child with its log. A sweep the store already holds is not logged twice (--again logs it anyway).
Exit status 0, 1 when a point failed (as the sweep's own), 2 for a folder that is not a sweep's."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from diffexp import cli, names, rundir
from diffexp.config.schema import TrackingConfig
from diffexp.config.store import load_config_yaml
from diffexp.errors import DiffexpError
from diffexp.sweeps.handoff import SweepInfo, point_overrides
from diffexp.sweeps.job import attach
from diffexp.sweeps.parent import open_parent, report_parent
from diffexp.tracking.records import get_run
from diffexp.tracking.store import client_for
from diffexp.upload import SWEEP_CONFIG, upload_key, upload_run_dir, uploaded_as

log = logging.getLogger(__name__)


def point_folders(sweep_dir: Path) -> list[tuple[int, Path, list[str]]]:
    """(point number, folder, its task overrides) for each job Hydra started, in point order."""
    points = []
    for hydra_yaml in sweep_dir.glob("*/.hydra/hydra.yaml"):
        job = OmegaConf.load(hydra_yaml).hydra
        points.append((int(job.job.num), hydra_yaml.parent.parent, list(job.overrides.task)))
    return sorted(points, key=lambda p: p[0])


def _failed_point(folder: Path, info: SweepInfo, point: int, overrides: list[str]) -> str:
    """A FAILED child for a point that left no figures, with its config and log where it has them."""
    from diffexp.tracking.params import flatten
    from diffexp.tracking.writer import RunRecorder

    config_yaml = folder / rundir.CONFIG_YAML
    cfg = load_config_yaml(config_yaml) if config_yaml.is_file() else None
    if cfg is not None:
        attach(cfg, info, point, overrides)
    recorder = RunRecorder(
        info.tracking_uri,
        experiment=info.experiment,
        run_name=cfg.tracking.run_name if cfg else f"point {point}",
        params=flatten(dataclasses.asdict(cfg)) if cfg else {},
        tags={**(cfg.tracking.tags if cfg else {}), names.SWEEP: info.name, names.UPLOADED_FROM: str(folder)},
        parent_run_id=info.run_id,
        log_file=folder / rundir.RUN_LOG if (folder / rundir.RUN_LOG).is_file() else None,
    )
    try:
        with recorder:
            raise DiffexpError(f"{folder}: no {rundir.METRICS_JSON}: the point did not finish (see its run.log)")
    except DiffexpError:
        pass  # recorded: FAILED, with the error tag and the log
    return recorder.run_id


def upload_sweep(sweep_dir: Path, uri: Optional[str] = None, again: bool = False) -> tuple[str, int]:
    """The sweep folder logged as a parent with its points; (the parent's run id, how many points failed). A
    sweep the store already holds (the same multirun.yaml and points' configs and figures) is not logged again
    unless `again`: its parent is returned."""
    from diffexp.review.check import review_logged_run

    config_file = sweep_dir / SWEEP_CONFIG
    if not config_file.is_file():
        raise DiffexpError(f"{sweep_dir}: not a sweep's folder (no {SWEEP_CONFIG}, which Hydra writes in a multirun's)")
    points = point_folders(sweep_dir)
    if not points:
        raise DiffexpError(f"{sweep_dir}: no point folders (<N>/.hydra/hydra.yaml) in this sweep's folder")
    files = [config_file] + [f / name for _, f, _ in points for name in (rundir.CONFIG_YAML, rundir.METRICS_JSON)]
    key = upload_key(*files)
    existing = None if again else uploaded_as(uri, key)
    if existing is not None:
        log.warning("%s: already in the store as sweep parent %s (upload again with --again)", sweep_dir, existing)
        return existing, int(get_run(client_for(uri), existing, with_steps=False).tags.get("sweep.failed", "0"))
    config = OmegaConf.load(config_file)
    if uri is not None:
        config.tracking.uri = uri
    tags = {names.UPLOADED_FROM: str(sweep_dir), names.UPLOAD_KEY: key}
    recorder, info = open_parent(config, tags, sweep_dir=sweep_dir, handoff=False)
    with recorder:  # FINISHED on the way out, FAILED (and the error) if anything below raises
        for point, folder, task in points:
            overrides = point_overrides(task, info.swept_keys)
            if not (folder / rundir.METRICS_JSON).is_file():
                run_id = _failed_point(folder, info, point, overrides)
                log.warning("point %d (%s): FAILED, no figures (run %s)", point, folder.name, run_id)
                continue
            cfg = load_config_yaml(folder / rundir.CONFIG_YAML)
            attach(cfg, info, point, overrides)
            tracking = TrackingConfig(uri=info.tracking_uri, experiment=info.experiment)
            run_id = upload_run_dir(folder, tracking, parent_run_id=info.run_id, cfg=cfg)
            review_logged_run(recorder.client, run_id)  # against the sweep's reference, as a live point is
            log.info("point %d (%s) -> run %s", point, " ".join(overrides) or folder.name, run_id)
        with tempfile.TemporaryDirectory(prefix="diffexp-sweep-summary-") as summary:
            failed = report_parent(recorder, info, summary_dir=Path(summary))
    return info.run_id, failed


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffexp.sweeps.upload", description=__doc__)
    parser.add_argument("sweep_dirs", nargs="+", type=Path, help="a multirun's folder (holding multirun.yaml)")
    parser.add_argument("--tracking-uri", default=None, help=cli.TRACKING_HELP)
    parser.add_argument("--again", action="store_true", help="log a sweep the store already holds once more")
    args = parser.parse_args(argv)
    failed = 0
    for sweep_dir in args.sweep_dirs:
        run_id, bad = upload_sweep(sweep_dir, args.tracking_uri, args.again)
        print(f"{sweep_dir} -> sweep parent run {run_id} ({bad} point(s) failed)")
        failed += bad
    return cli.EXIT_BAD_NEWS if failed else cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.run(main))
