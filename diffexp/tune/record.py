"""A tuning's records: tune.json, the trials table and the chart in the tuning's directory (always), and in
MLflow (when tracked) one parent run with a child run per trial stage, tagged `tune.state`; a resumed tuning's
earlier tune.json, checked against the settings it is resumed with."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from diffexp import names, rundir
from diffexp.errors import ConfigError
from diffexp.reports.tune import CHART, SUMMARY, TrialRow, rebuild_from_folder, write_report
from diffexp.tune import space
from diffexp.tune.config import TuneConfig
from diffexp.tune.search import Search, Trial
from diffexp.tune.winner import Outcome

log = logging.getLogger(__name__)

ROLE = names.TUNE_ROLE
INTERRUPTED = names.TUNE_INTERRUPTED
STATE = names.TUNE_STATE
# What may change between the sessions of a resumed tuning: its budgets for this session and the flag itself.
SESSION_FIELDS = ("max_trials", "max_minutes", "trial_timeout_s", "resume", "out")


def budget_line(search: Search) -> tuple[Optional[float], str]:
    if search.budget.vram_gib is not None:
        return search.budget.vram_gib, "peak VRAM"
    return search.budget.host_gib, "peak host RSS"


def summary(search: Search, outcome: Optional[Outcome], interrupted: bool) -> dict:
    w = outcome.winner if outcome else None
    coverage = search.coverage()
    return {
        "space": search.tcfg.name,
        "tune": OmegaConf.to_container(OmegaConf.structured(search.tcfg)),
        "run_overrides": search.run_overrides,
        "machine": dataclasses.asdict(search.box),
        "search": search.tcfg.search,
        "space_key": space.fingerprint(search.space, search.tcfg.base),
        "coverage": {"size": coverage.size, "visited": coverage.visited, "exhaustive": coverage.exhaustive},
        "wall_s": search.wall_s,
        "sessions": search.sessions,
        "interrupted": interrupted,
        "stopped": search.stopped_because,
        "trials": [
            {
                **t.row().to_dict(),
                "dir": str(t.dir) if t.dir else None,
                "sample": t.sample,
                "params": t.point.params,
                "env": t.point.env,
                "lossy": t.point.lossy,
                "done": t.done,
                "stage_run_ids": t.stage_run_ids,
            }
            for t in search.trials
        ],
        "winner": w.number if w else None,
        "decided_by": outcome.decided_by if outcome else "",
        "noise": outcome.noise_text if outcome else "",
        "command": outcome.command if outcome else "",
        "sglang_command": outcome.sglang_command if outcome else "",
        "sglang_notes": outcome.sglang_notes if outcome else [],
        "gains": [dataclasses.asdict(g) for g in outcome.gains] if outcome else [],
    }


def _write_summary(search: Search, data: dict) -> None:
    """tune.json replaced whole (written beside it, then renamed): a kill while writing leaves the previous one."""
    partial = search.out / f"{SUMMARY}.partial"
    partial.write_text(json.dumps(data, indent=2))
    os.replace(partial, search.out / SUMMARY)


def write_checkpoint(search: Search) -> None:
    """tune.json as the tuning stands after a finished trial: marked interrupted, which it is if the process dies
    before the end (the end rewrites it), and resumable (tune.resume=true) from here."""
    data = summary(search, None, interrupted=True)
    data["stopped"] = f"not finished: written after trial {len(search.trials) - 1} while the tuning ran"
    _write_summary(search, data)


def write_files(search: Search, outcome: Optional[Outcome], interrupted: bool) -> list[Path]:
    data = summary(search, outcome, interrupted)
    _write_summary(search, data)
    budget, label = budget_line(search)
    rows = [t.row() for t in search.trials]
    return [search.out / SUMMARY, *write_report(rows, data["winner"], budget, label, search.out)]


def previous(out: Path, tcfg: TuneConfig, run_overrides: list[str]) -> dict:
    """The tune.json of the tuning `tune.resume=true` continues, when its settings are this session's."""
    path = out / SUMMARY
    if not path.is_file():
        raise ConfigError([f"tune.resume=true: no {SUMMARY} in {out} to resume (give its tune.out)"])
    data = json.loads(path.read_text())
    now = OmegaConf.to_container(OmegaConf.structured(tcfg))
    changed = [k for k in now if k not in SESSION_FIELDS and data["tune"].get(k) != now[k]]
    if data["run_overrides"] != run_overrides:
        changed.append(f"run overrides {data['run_overrides']} → {run_overrides}")
    if changed:
        raise ConfigError([f"tune.resume=true: {out} was tuned with other settings: {', '.join(changed)}"])
    return data


def search_tags(data: dict) -> dict[str, str]:
    """The parent's tags of what a tuning covered (from its summary): the space's fingerprint and size, the
    points that ran, the trial counts by state."""
    coverage = data["coverage"]
    counts: dict[str, int] = {}
    for t in data["trials"]:
        counts[t["state"]] = counts.get(t["state"], 0) + 1
    return {
        names.TUNE_SPACE_KEY: data["space_key"],
        names.TUNE_SPACE_SIZE: str(coverage["size"]),
        names.TUNE_VISITED: str(coverage["visited"]),
        names.TUNE_EXHAUSTIVE: str(coverage["exhaustive"]).lower(),
        names.TUNE_TRIALS: str(len(data["trials"])),
        **{f"{names.TUNE_TRIALS}.{k}": str(v) for k, v in counts.items()},
    }


def parent_params(tcfg: TuneConfig, run_overrides: list[str]) -> dict[str, str]:
    keys = (
        "name",
        "search",
        "vram_gib",
        "host_gib",
        "allow_lossy",
        "max_trials",
        "max_minutes",
        "prune_margin",
        "probe_repeats",
        "repeats",
        "seed",
        "min_effect_pct",
        "reference",
    )
    return {**{f"tune.{k}": str(getattr(tcfg, k)) for k in keys}, names.TUNE_RUN_OVERRIDES: json.dumps(run_overrides)}


class Tracked:
    """Writes each trial stage's tags on its child run (the trial process created it), or a child of its own for a
    trial that never started (a config the engine refuses)."""

    def __init__(self, parent, experiment: str):
        self.parent, self.experiment = parent, experiment

    def _find(self, trial: Trial, stage: str) -> Optional[str]:
        from diffexp.tracking.queries import search_runs
        from diffexp.tracking.writer import PARENT_TAG

        runs = search_runs(
            self.parent.client,
            f"tags.`{PARENT_TAG}` = '{self.parent.run_id}' and tags.`tune.key` = '{trial.number}/{stage}'",
            experiment_ids=[self.parent.experiment_id],
        )
        return runs[0].run_id if runs else None

    def on_stage(self, trial: Trial, stage: str, final: bool, state: str) -> None:
        from diffexp.tracking.writer import RunRecorder, RunWriter

        run_id = trial.stage_run_ids.get(stage) or self._find(trial, stage)
        tags = {
            STATE: state,
            "tune.reason": trial.reason[:5000],
            "tune.kind": trial.kind,
            "tune.name": trial.name,
            "tune.trial": str(trial.number),
            "tune.stage": stage,
            "tune.final": str(final).lower(),
            "tune.complexity": str(trial.point.complexity),
            "tune.overrides": json.dumps(trial.point.overrides),
            "tune.env": json.dumps(trial.point.env),
            "tune.correctness": trial.correctness,
        }
        if run_id is None:  # never started: a child that says why
            with RunRecorder(
                self.parent.uri,
                self.experiment,
                f"tune · {trial.name} · {stage}",
                {},
                {**tags, "tune.key": f"{trial.number}/{stage}"},
                parent_run_id=self.parent.run_id,
            ) as child:
                child.status = "FAILED"
            run_id = child.run_id
        writer = RunWriter(self.parent.client, run_id)
        writer.set_tags(tags)
        if trial.host_gib is not None:
            writer.log_metrics({"tune.host_rss_gib": trial.host_gib})
        trial.stage_run_ids[stage] = run_id
        if final:
            trial.run_id = run_id


def finish_parent(parent, outcome: Optional[Outcome], search: Search, files: list[Path], interrupted: bool) -> None:
    w = outcome.winner if outcome else None
    tags = {
        INTERRUPTED: str(interrupted).lower(),
        names.TUNE_STOPPED: search.stopped_because or ("interrupted" if interrupted else ""),
        **search_tags(summary(search, outcome, interrupted)),
    }
    parent.log_metrics({names.TUNE_WALL_S: search.wall_s})
    if outcome is not None:
        tags.update({"tune.decided_by": outcome.decided_by, "tune.noise": outcome.noise_text[:5000]})
    if w is not None:
        tags.update(
            {
                names.TUNE_WINNER: str(w.number),
                "tune.winner_name": w.name,
                "tune.winner_run_id": w.run_id,
                "tune.command": outcome.command[:5000],
                "tune.sglang_command": outcome.sglang_command[:5000],
            }
        )
        tags.update({f"tune.gain.{g.anchor}": g.text()[:5000] for g in outcome.gains})
        spread = w.result.spread.get("denoise_s", {}) if w.result else {}
        parent.log_metrics(
            {
                k: v
                for k, v in {
                    "tune.best.denoise_s": w.median_s,
                    "tune.best.ci95_low": spread.get("ci95_low"),
                    "tune.best.ci95_high": spread.get("ci95_high"),
                }.items()
                if v is not None
            }
        )
    parent.set_tags(tags)
    for path in files:
        parent.log_artifact(path)


def log_untracked(tune_dir: Path, tracking_uri: Optional[str]) -> str:
    """`python -m diffexp.tune --log DIR`: an untracked tuning (tune.json and its trial folders, e.g. from a GPU
    box without a store) logged as the parent run with its children, as if it had been tracked."""
    from diffexp.config.schema import TrackingConfig
    from diffexp.tracking.writer import PARENT_TAG, RunRecorder
    from diffexp.upload import upload_run_dir

    data = json.loads((tune_dir / SUMMARY).read_text())
    tcfg = data["tune"]
    experiment = None
    first = next((Path(t["dir"]) for t in data["trials"] if t.get("dir")), None)
    if first is not None and (tune_dir / "trials" / first.name / rundir.CONFIG_YAML).is_file():
        experiment = OmegaConf.load(tune_dir / "trials" / first.name / rundir.CONFIG_YAML).model.name
    keys = ("name", "search", "vram_gib", "host_gib", "allow_lossy", "max_trials", "prune_margin", "seed")
    params = {f"tune.{k}": str(tcfg.get(k)) for k in keys}
    params[names.TUNE_RUN_OVERRIDES] = json.dumps(data["run_overrides"])
    with RunRecorder(
        tracking_uri,
        experiment or "tune",
        f"tune {data['space']}",
        params,
        {"diffexp.role": ROLE, "uploaded_from": str(tune_dir)},
    ) as parent:
        for t in data["trials"]:
            folder = tune_dir / "trials" / Path(t["dir"]).name if t.get("dir") else None
            tags = {
                PARENT_TAG: parent.run_id,
                STATE: t["state"],
                "tune.reason": t["reason"][:5000],
                "tune.kind": t["kind"],
                "tune.name": t["name"],
                "tune.trial": str(t["number"]),
                "tune.final": "true",
                "tune.overrides": json.dumps(t["overrides"]),
                "tune.correctness": t["correctness"],
                "tune.complexity": str(t["complexity"]),
            }
            if folder is not None and (folder / rundir.METRICS_JSON).is_file():
                upload_run_dir(folder, TrackingConfig(uri=tracking_uri, experiment=experiment), tags)
        winner = data["winner"]
        parent.set_tags(
            {
                INTERRUPTED: str(data["interrupted"]).lower(),
                names.TUNE_STOPPED: data["stopped"],
                names.TUNE_WINNER: str(winner),
                "tune.command": data["command"][:5000],
                "tune.sglang_command": data["sglang_command"][:5000],
                "tune.decided_by": data["decided_by"],
                **(search_tags(data) if "coverage" in data else {}),
            }
        )
        if data.get("wall_s") is not None:
            parent.log_metrics({names.TUNE_WALL_S: data["wall_s"]})
        if not (tune_dir / CHART).is_file():  # untracked where plotly was missing: draw it now
            rebuild_from_folder(tune_dir, tune_dir)
        for name in (SUMMARY, "trials.md", "trials.csv", CHART):
            if (tune_dir / name).is_file():
                parent.log_artifact(tune_dir / name)
        if data["interrupted"]:
            parent.status = "KILLED"
    return parent.run_id


__all__ = ["TrialRow", "Tracked", "finish_parent", "log_untracked", "summary", "write_files"]
