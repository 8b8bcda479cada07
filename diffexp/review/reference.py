"""What a run is compared against: `review.reference` resolved to a logged run or to files, and the
check that both were generated with the same sampling parameters.

Accepted references:
  <run id>          a logged MLflow run
  latest:<model>    the newest FINISHED, valid, lossless run of that model with the same sampling
                    parameters and no failed review (the run itself excluded)
  sweep:first       in a sweep: the earliest point with the same model and sampling parameters
  sweep:baseline    in a sweep: the point marked review.baseline=true (same model and sampling)
  sweep             sweep:baseline when such a point has finished, else sweep:first
  <path>            an image/video file, a folder of them, or a diffexp run folder (outputs/ + config.yaml)
  off               no review
Unset (null) means `sweep` inside a sweep and no review outside one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from diffexp import names, rundir
from diffexp.errors import DiffexpError
from diffexp.review.sampling import sampling_mismatches
from diffexp.review.verdict import FAIL, lossy_reasons, settings_from_params
from diffexp.tracking.queries import LoggedRun, get_run, runs_of_model, sweep_points

log = logging.getLogger(__name__)

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
OFF = ("off", "none", "false")
SWEEP_MODES = ("auto", "first", "baseline")


@dataclass
class Reference:
    label: str  # as asked for: a run id, latest:<model>, sweep:first, a path
    run: Optional[LoggedRun] = None  # when the reference is a logged run
    path: Optional[Path] = None  # when the reference is files
    # Its logged config (flattened), when known; None for bare files (sampling parameters not checked).
    params: Optional[dict[str, str]] = None


@dataclass
class NoReference:
    """Nothing to compare with; `is_sweep_reference` when this run is itself the sweep's reference."""

    note: str
    is_sweep_reference: bool = False


def check_sampling(run_params: Mapping[str, str], reference: Reference) -> None:
    if reference.params is None:
        log.warning("reference %s has no recorded config: sampling parameters not checked", reference.label)
        return
    problems = sampling_mismatches(run_params, reference.params)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise DiffexpError(
            f"reference {reference.label} was generated with other sampling parameters, so its outputs are not "
            f"comparable ({len(problems)} difference(s)):\n{lines}\n"
            "Use a reference generated with the same parameters (e.g. review.reference=latest:<model>)."
        )


def _usable(candidate: LoggedRun, run: LoggedRun) -> bool:
    """A run that may serve as a reference for `run`: another finished, valid, lossless run, same sampling."""
    return (
        candidate.run_id != run.run_id
        and candidate.status == "FINISHED"
        and candidate.tags.get("valid", "true") == "true"
        and not lossy_reasons(candidate.params)
        and not sampling_mismatches(run.params, candidate.params)
    )


def latest_of_model(client, model: str, run: LoggedRun) -> LoggedRun:
    candidates = runs_of_model(client, model)
    for candidate in candidates:
        if _usable(candidate, run) and candidate.tags.get(names.CORRECTNESS) != FAIL:
            return candidate
    hint = ""
    others = [c for c in candidates if c.run_id != run.run_id]
    if others:
        diffs = sampling_mismatches(run.params, others[0].params)
        differs = "; ".join(diffs) if diffs else "validity, lossiness or a failed review"
        hint = f"; the newest, {others[0].run_id}, differs in {differs}"
    raise DiffexpError(
        f"review.reference=latest:{model}: no FINISHED, valid, lossless run of model {model!r} with this run's "
        f"sampling parameters ({len(others)} run(s) of that model found{hint})"
    )


def reference_for_sweep(client, parent_run_id: str, run: LoggedRun, which: str = "auto") -> Optional[LoggedRun]:
    """The sweep point `run` is compared with, or None when `run` is itself the reference.

    Only finished, valid, lossless points with the same model and sampling parameters qualify.
    baseline: the point marked review.baseline=true (an error when none has finished yet).
    first: the earliest-started point, started before `run`.
    auto (what `review.reference=sweep` and an unset reference in a sweep mean): a point marked
    baseline, if one has finished; otherwise the first.
    """
    if which not in SWEEP_MODES:
        raise DiffexpError(f"review.reference=sweep:{which}: allowed are sweep, sweep:first, sweep:baseline")
    if which != "first" and settings_from_params(run.params).baseline:
        return None
    model = run.params.get("model.name")
    points = [p for p in sweep_points(client, parent_run_id) if p.params.get("model.name") == model and _usable(p, run)]
    if which != "first":
        for point in points:
            if settings_from_params(point.params).baseline:
                return point
        if which == "baseline":
            raise DiffexpError(
                f"review.reference=sweep:baseline: no finished point of sweep {parent_run_id} is marked "
                "review.baseline=true with this run's model and sampling parameters; run the baseline point "
                "first, or review afterwards with `python -m diffexp.review RUN`"
            )
    for point in points:
        if point.start_time_ms < run.start_time_ms:
            return point
    return None


def _params_of_run_folder(path: Path) -> Optional[dict[str, str]]:
    config = path / rundir.CONFIG_YAML
    if not (path.is_dir() and config.is_file()):
        return None
    from omegaconf import OmegaConf

    from diffexp.tracking.params import flatten

    return flatten(OmegaConf.to_container(OmegaConf.load(config), resolve=True))


def resolve_reference(client, spec: Optional[str], run: LoggedRun) -> Union[Reference, NoReference]:
    """`review.reference` (or the CLI's --reference) for `run`, resolved; raises DiffexpError when it cannot be."""
    spec = (spec or "").strip()
    if spec.lower() in OFF:
        return NoReference("review.reference=off")
    if not spec:
        if not run.parent_run_id:
            return NoReference("no reference (set review.reference)")
        spec = "sweep"
    if spec == "sweep" or spec.startswith("sweep:"):
        if not run.parent_run_id:
            raise DiffexpError(f"review.reference={spec}: this run is not part of a sweep (it has no parent run)")
        which = spec.partition(":")[2] or "auto"
        found = reference_for_sweep(client, run.parent_run_id, run, which)
        if found is None:
            if lossy_reasons(run.params):
                return NoReference("a lossy run cannot be its sweep's reference, and no earlier point matches")
            if settings_from_params(run.params).baseline:
                return NoReference(f"this run is the reference of sweep {run.parent_run_id}", is_sweep_reference=True)
            # Only the sweep's reference point is its reference; a point nothing matches is just unreviewed.
            return NoReference(
                f"no finished point of sweep {run.parent_run_id} has this run's model and sampling parameters "
                "to compare with"
            )
        return Reference(spec, run=found, params=found.params)
    if spec.startswith("latest:"):
        found = latest_of_model(client, spec.partition(":")[2], run)
        return Reference(spec, run=found, params=found.params)
    path = Path(spec).expanduser()
    if path.exists():
        return Reference(str(path.resolve()), path=path, params=_params_of_run_folder(path))
    if RUN_ID.match(spec):
        found = get_run(client, spec)
        return Reference(spec, run=found, params=found.params)
    raise DiffexpError(
        f"review.reference={spec!r}: not an MLflow run id (32 hex digits), latest:<model>, sweep, sweep:first, "
        "sweep:baseline, off, or an existing file or folder"
    )


def check_reference(cfg, parent_run_id: Optional[str] = None) -> None:
    """`review.reference` of a run about to start, resolved now: a reference that cannot be found refuses the
    run (ConfigError, exit status 2) instead of surfacing after the whole run. Sweep references are
    resolved per point when it is reviewed (the other points may not have run yet)."""
    import dataclasses

    from diffexp.errors import ConfigError
    from diffexp.tracking.params import flatten
    from diffexp.tracking.store import client_for

    spec = (cfg.review.reference or "").strip()
    if not cfg.tracking.enabled or not spec or spec.lower() in OFF:
        return
    if spec == "sweep" or spec.startswith("sweep:"):
        which = spec.partition(":")[2] or "auto"
        if which not in SWEEP_MODES:
            raise ConfigError([f"review.reference={spec!r}: allowed are sweep, sweep:first, sweep:baseline"])
        if not (parent_run_id or cfg.sweep):
            raise ConfigError([f"review.reference={spec}: this run is not part of a sweep (run it with -m)"])
        return
    # The run as it will be logged, for latest:'s sampling match (no run id yet: nothing to exclude).
    run = LoggedRun(
        run_id="", experiment_id="", status="RUNNING", start_time_ms=0, params=flatten(dataclasses.asdict(cfg))
    )
    try:
        resolve_reference(client_for(cfg.tracking.uri), spec, run)
    except DiffexpError as exc:
        raise ConfigError([f"review.reference={spec!r}: {exc}"]) from exc
