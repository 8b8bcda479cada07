"""`python -m diffexp.upload RUN_DIR…`: log runs made with tracking.enabled=false (e.g. on a GPU box
without MLflow) into an MLflow store, as if they had been tracked live. A folder the store already holds (the same
config.yaml and metrics.json, tag upload.key) is not logged twice: its run is named instead (--again logs it anyway)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import sys
from pathlib import Path

from diffexp import cli, names, rundir
from diffexp.config.schema import Config, TrackingConfig
from diffexp.config.store import load_config_yaml
from diffexp.errors import DiffexpError
from diffexp.results import RunResult
from diffexp.tracking.naming import run_name, run_tags

log = logging.getLogger(__name__)


SWEEP_CONFIG = "multirun.yaml"  # what Hydra writes in a multirun's folder


def upload_key(*files: Path) -> str:
    """What identifies an upload: a hash of the files that hold its figures and config (absent ones count)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"<absent>") + b"\0")
    return digest.hexdigest()[:20]


def uploaded_as(uri: str | None, key: str) -> str | None:
    """The run this store already holds, FINISHED, with this upload key (the newest), or None: an upload that
    ended otherwise (a crash while logging) is logged again."""
    from diffexp.tracking.queries import search_runs
    from diffexp.tracking.store import client_for

    query = f"tags.`{names.UPLOAD_KEY}` = '{key}' and attributes.status = 'FINISHED'"
    found = search_runs(client_for(uri), query, order_by=["attributes.start_time DESC"])
    return found[0].run_id if found else None


def upload_run_dir(
    run_dir: Path,
    tracking: TrackingConfig,
    extra_tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
    cfg: Config | None = None,
    again: bool = False,
) -> str:
    """The run folder logged as a run (a child of `parent_run_id` when given), with `cfg` (default: its
    config.yaml; a sweep's uploader passes it with the point's tags and name set); its id. A loose run folder the
    store already holds (the same config and figures) is not logged again unless `again`: its run id is returned."""
    from diffexp.tracking.params import flatten
    from diffexp.tracking.writer import RunRecorder

    config_yaml, metrics_json = run_dir / rundir.CONFIG_YAML, run_dir / rundir.METRICS_JSON
    if (run_dir / SWEEP_CONFIG).is_file():
        raise DiffexpError(f"{run_dir}: a sweep's folder: log it with python -m diffexp.sweeps.upload {run_dir}")
    if not (config_yaml.is_file() and metrics_json.is_file()):
        raise DiffexpError(f"{run_dir}: not a run directory (needs config.yaml and metrics.json)")
    key = upload_key(config_yaml, metrics_json)
    if parent_run_id is None and not again:
        existing = uploaded_as(tracking.uri, key)
        if existing is not None:
            log.warning("%s: already in the store as run %s (upload again with --again)", run_dir, existing)
            return existing
    cfg = cfg or load_config_yaml(config_yaml)
    result = RunResult.read_json(metrics_json)
    # Outputs were recorded with the paths of the machine that ran them: find them here.
    result.outputs = [
        str(run_dir / rundir.OUTPUTS / Path(p).name)
        for p in result.outputs
        if (run_dir / rundir.OUTPUTS / Path(p).name).exists()
    ]
    result.artifacts = {
        k: str(run_dir / Path(v).name) for k, v in result.artifacts.items() if (run_dir / Path(v).name).exists()
    }
    # Environment tags describe the machine that ran it, which the result carries; ours would be wrong.
    tags = {k: v for k, v in run_tags(cfg).items() if not k.startswith(("gpu.", "host", "cuda", "version.", "git."))}
    recorder = RunRecorder(
        tracking.uri,
        experiment=tracking.experiment or cfg.model.name,
        run_name=cfg.tracking.run_name or run_name(cfg),
        params=flatten(dataclasses.asdict(cfg)),
        tags={**tags, **(extra_tags or {}), names.UPLOADED_FROM: str(run_dir), names.UPLOAD_KEY: key},
        parent_run_id=parent_run_id,
        log_file=run_dir / rundir.RUN_LOG if (run_dir / rundir.RUN_LOG).is_file() else None,
    )
    with recorder:
        recorder.log_artifact(config_yaml)
        recorder.log_result(result)
        recorder.log_artifact(metrics_json)
    return recorder.run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--tracking-uri", default=None, help="default: the local store ./mlruns/mlflow.db")
    parser.add_argument("--experiment", default=None)
    parser.add_argument("--tag", action="append", default=[], help="KEY=VALUE, repeatable")
    parser.add_argument("--again", action="store_true", help="log a folder the store already holds once more")
    args = parser.parse_args(argv)
    tracking = TrackingConfig(uri=args.tracking_uri, experiment=args.experiment)
    tags = dict(t.split("=", 1) for t in args.tag)
    for run_dir in args.run_dirs:
        print(f"{run_dir} -> run {upload_run_dir(run_dir, tracking, tags, again=args.again)}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
