"""The search: the reference and the anchors first, then Optuna's ask/tell (TPE, seeded, constraints) over the
space, or every point of the space once (grid: Optuna's BruteForceSampler); each trial a fresh process, probed with
a few repeats and pruned when hopeless, measured in full otherwise, gated by the budgets and the review. A resumed
tuning's finished trials are replayed to the sampler before it is asked for more."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Optional

from diffexp import rundir
from diffexp.config import Config, compose, to_config, validate
from diffexp.errors import DiffexpError
from diffexp.reports.tune import TrialRow
from diffexp.results import RunResult
from diffexp.tune import gate, space
from diffexp.tune.config import GRID, TuneConfig
from diffexp.tune.trial import Ran, launch

log = logging.getLogger(__name__)

PROBE, FULL = "probe", "full"
REFERENCE, ANCHOR, SEARCH = "reference", "anchor", "search"
# How many Optuna suggestions in a row may repeat a point already run before the space counts as exhausted.
MAX_REPEATED_SUGGESTIONS = 50


@dataclass
class Trial:
    number: int
    name: str
    kind: str
    point: space.Point
    state: str = ""
    reason: str = ""
    result: Optional[RunResult] = None
    run_id: str = ""
    stage_run_ids: dict[str, str] = field(default_factory=dict)
    host_gib: Optional[float] = None
    correctness: str = ""
    dir: Optional[Path] = None
    done: bool = False  # its last stage was judged (an interrupted trial is not done)

    @property
    def sample(self) -> list[float]:
        """The trial's measured repeats of denoise_s (one figure when it has no repeats)."""
        if self.result is None:
            return []
        values = [r["denoise_s"] for r in self.result.repeats if r.get("denoise_s") is not None]
        return values or ([self.result.denoise_s] if self.result.denoise_s is not None else [])

    @property
    def median_s(self) -> Optional[float]:
        return median(self.sample) if self.sample else None

    def row(self) -> TrialRow:
        r, spread = self.result, (self.result.spread.get("denoise_s", {}) if self.result else {})
        return TrialRow(
            number=self.number,
            name=self.name,
            kind=self.kind,
            state=self.state,
            reason=self.reason,
            denoise_s=r.denoise_s if r else None,
            ci95_low=spread.get("ci95_low"),
            ci95_high=spread.get("ci95_high"),
            n=len(self.sample),
            vram_gib=gate.device_peak_gib(r) if r else None,
            host_gib=self.host_gib,
            correctness=self.correctness,
            complexity=self.point.complexity,
            overrides=list(self.point.overrides),
            run_id=self.run_id,
        )


@dataclass(frozen=True)
class Coverage:
    """How much of its space a tuning ran: the space's distinct points (None: a continuous range), those that ran
    (pruned and infeasible ones included), and whether that is all of them."""

    size: Optional[int]
    visited: int

    @property
    def exhaustive(self) -> bool:
        return self.size is not None and self.visited >= self.size

    def text(self) -> str:
        if self.size is None:
            return f"{self.visited} points of a continuous space"
        return f"{self.visited} of {self.size} points" + (" (exhaustive)" if self.exhaustive else " (NOT exhaustive)")


def composed(overrides: list[str]) -> Config:
    """A typed run config; Hydra's composition errors (an unknown option or key) as DiffexpError, like diffexp's
    own validation's."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return to_config(compose(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise DiffexpError(str(exc).splitlines()[0]) from exc


@dataclass
class Machine:
    cuda: bool
    num_gpus: int


def machine() -> Machine:
    import torch

    cuda = torch.cuda.is_available()
    return Machine(cuda, torch.cuda.device_count() if cuda else 0)


class Search:
    """One tuning's trials. `on_stage(trial, stage, final, state)` (the records) is called after each stage is judged."""

    def __init__(
        self,
        tcfg: TuneConfig,
        run_overrides: list[str],
        out: Path,
        box: Machine,
        parent_run_id: Optional[str] = None,
        on_stage: Optional[Callable[[Trial, str, bool, str], None]] = None,
        checkpoint: Optional[Callable[[Search], None]] = None,
    ):
        self.tcfg, self.run_overrides, self.out, self.box = tcfg, run_overrides, out, box
        self.parent_run_id, self.on_stage = parent_run_id, on_stage
        # Called after every finished trial (tune.json written as it stands), so that a tuning killed at any
        # moment (SIGKILL, a job's time limit) keeps every finished trial and can be resumed.
        self.checkpoint = checkpoint
        self.budget = gate.Budget(tcfg.vram_gib if box.cuda else None, tcfg.host_gib)
        self.space = space.active(tcfg, box.num_gpus, box.cuda)
        self.trials: list[Trial] = []
        self.reference: Optional[Trial] = None  # the trial every other one is reviewed against
        self.grid = tcfg.search == GRID
        self.started, self.ended = time.monotonic(), None
        self.earlier_wall_s, self.sessions = 0.0, 1  # a resumed tuning's earlier sessions
        self.stopped_because = ""
        cache = out / "compile_cache"
        # One compile cache for every trial: a configuration compiled once is not compiled again.
        self.env = {
            "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"),
            "TORCHINDUCTOR_FX_GRAPH_CACHE": "1",
            "TORCHINDUCTOR_AUTOGRAD_CACHE": "1",
            "TRITON_CACHE_DIR": str(cache / "triton"),
        }

    # --- configs ---------------------------------------------------------------------------------------------

    @property
    def full_repeats(self) -> int:
        return self.tcfg.repeats or (5 if self.box.cuda else 3)

    def command_overrides(self, point: space.Point, repeats: Optional[int] = None) -> list[str]:
        """What `python -m diffexp` needs to run this point as the tuner measured it."""
        extra = [f"measure.repeats={repeats or self.full_repeats}"]
        if self.budget.vram_gib is not None:
            extra.append(f"engine.vram_cap_gib={self.budget.vram_gib:g}")
        return [*self.run_overrides, *self.tcfg.base, *point.overrides, *extra]

    def trial_config(self, trial: Trial, stage: str, repeats: int, trial_dir: Path) -> Config:
        cfg = composed([*self.command_overrides(trial.point, repeats), f"output_dir={trial_dir}"])
        reference = self.tcfg.reference or self.reference_spec()
        cfg = dataclasses.replace(
            cfg,
            review=dataclasses.replace(cfg.review, reference=reference if self.tracked else "off"),
            tracking=dataclasses.replace(
                cfg.tracking,
                run_name=f"tune · {trial.name} · {stage}",
                tags={**cfg.tracking.tags, "tune.key": f"{trial.number}/{stage}", "tune.trial": str(trial.number)},
            ),
        )
        validate(cfg)
        return cfg

    @property
    def tracked(self) -> bool:
        return self.parent_run_id is not None

    def reference_spec(self) -> str:
        if self.reference is None:
            return "off"
        return self.reference.run_id if self.tracked else str(self.reference.dir)

    # --- one trial -------------------------------------------------------------------------------------------

    def _stage(self, trial: Trial, stage: str, repeats: int) -> Optional[Ran]:
        trial_dir = self.out / "trials" / f"{trial.number:03d}_{stage}"
        trial.dir = trial_dir
        try:
            cfg = self.trial_config(trial, stage, repeats, trial_dir)
        except DiffexpError as exc:
            trial.state, trial.reason = gate.INFEASIBLE, f"config: {exc}"
            trial.stage_run_ids[stage] = ""
            return None
        log.info(
            "trial %d (%s, %s, %d repeats): %s",
            trial.number,
            trial.name,
            stage,
            repeats,
            " ".join(trial.point.overrides) or "(reference)",
        )
        ran = launch(cfg, trial_dir, {**self.env, **trial.point.env}, self.parent_run_id, self.tcfg.trial_timeout_s)
        trial.result, trial.host_gib = ran.result, gate.host_peak_gib(ran.result, ran.host_rss_gib)
        trial.run_id = ran.run_id or ""
        trial.stage_run_ids[stage] = trial.run_id
        self._judge(trial, ran)
        return ran

    def _judge(self, trial: Trial, ran: Ran) -> None:
        if ran.status != "FINISHED" or ran.result is None or trial.median_s is None:
            trial.state, trial.reason = gate.INFEASIBLE, ran.error or f"run {ran.status}"
            return
        over = gate.over_budget(ran.result, trial.host_gib, self.budget)
        if over:
            trial.state, trial.reason = gate.INFEASIBLE, over
            return
        if self.reference is None and self.tcfg.reference is None:
            if trial.point.lossy:
                trial.state, trial.reason = gate.INFEASIBLE, "lossy, and no lossless reference to review it against"
                return
            trial.correctness, self.reference = "reference", trial
        elif self.tracked:
            trial.correctness = ran.correctness or "unchecked"
        else:
            trial.correctness, why = gate.review_files(trial.dir, Path(self.tcfg.reference or self.reference.dir))
            if trial.correctness != gate.PASS:
                trial.reason = why
        if trial.correctness not in (gate.PASS, "reference"):
            trial.state = gate.INFEASIBLE
            trial.reason = trial.reason or f"review {trial.correctness}"
            return
        trial.state, trial.reason = gate.FEASIBLE, ""

    def best(self) -> Optional[Trial]:
        feasible = [t for t in self.trials if t.state == gate.FEASIBLE]
        return min(feasible, key=lambda t: t.median_s) if feasible else None

    def run_trial(self, name: str, kind: str, point: space.Point) -> Trial:
        trial = Trial(len(self.trials), name, kind, point)
        self.trials.append(trial)
        best = self.best()
        # The reference and the anchors are measured in full: the review and the gains are judged against them.
        if kind == SEARCH and best is not None and self.tcfg.probe_repeats < self.full_repeats:
            ran = self._stage(trial, PROBE, self.tcfg.probe_repeats)
            if ran is None or trial.state != gate.FEASIBLE:
                return self._reported(trial, PROBE, final=True)
            limit = best.median_s * (1 + self.tcfg.prune_margin)
            if trial.median_s > limit:
                trial.state = gate.PRUNED
                trial.reason = (
                    f"probe {trial.median_s:.4g} s > best {best.median_s:.4g} s × (1 + {self.tcfg.prune_margin:g})"
                )
                return self._reported(trial, PROBE, final=True)
            self._reported(trial, PROBE, final=False, state=gate.PROMOTED)
        self._stage(trial, FULL, self.full_repeats)
        return self._reported(trial, FULL, final=True)

    def _reported(self, trial: Trial, stage: str, final: bool, state: Optional[str] = None) -> Trial:
        trial.done = final
        if self.on_stage is not None:
            self.on_stage(trial, stage, final, state or trial.state)
        if final and self.checkpoint is not None:
            self.checkpoint(self)
        return trial

    # --- what it covered, how long it took ------------------------------------------------------------------

    @property
    def wall_s(self) -> float:
        """This session's wall time (until the loop ended, or until now) and the earlier sessions'."""
        return self.earlier_wall_s + (self.ended or time.monotonic()) - self.started

    def visited(self) -> set[str]:
        return {t.point.key for t in self.trials if t.kind in (REFERENCE, SEARCH) and t.done}

    def coverage(self) -> Coverage:
        total = space.size(self.space)
        return Coverage(None if total == float("inf") else int(total), len(self.visited()))

    # --- resuming --------------------------------------------------------------------------------------------

    def restore(self, data: dict) -> None:
        """A resumed tuning's finished trials (tune.json), each re-read from its folder under this tuning's
        directory; the trial that was running when it stopped is removed and runs again."""
        unfinished = False
        for t in data["trials"]:
            unfinished = unfinished or not t.get("done")
            if unfinished:  # the numbers go on from here: the folders are the next trials'
                log.info("trial %d (%s) did not finish: it runs again", t["number"], t["name"])
                continue
            folder = self.out / "trials" / Path(t["dir"]).name if t.get("dir") else None
            metrics = folder / rundir.METRICS_JSON if folder else None
            point = space.Point(t["params"], t["overrides"], t["env"], t["complexity"], t["lossy"])
            trial = Trial(len(self.trials), t["name"], t["kind"], point, t["state"], t["reason"])
            trial.result = RunResult.read_json(metrics) if metrics and metrics.is_file() else None
            trial.run_id, trial.stage_run_ids, trial.host_gib = t["run_id"], t["stage_run_ids"], t["host_gib"]
            trial.correctness, trial.dir, trial.done = t["correctness"], folder, True
            if trial.correctness == "reference":
                self.reference = trial
            self.trials.append(trial)
        # The folders of trials that did not finish: listed unfinished (interrupted), or started after the last
        # checkpoint of a session that was killed. Their numbers are the next trials'.
        for folder in sorted((self.out / "trials").glob("[0-9][0-9][0-9]_*")):
            if int(folder.name[:3]) >= len(self.trials):
                log.info("removing %s: its trial did not finish", folder.name)
                shutil.rmtree(folder)
        self.earlier_wall_s, self.sessions = data.get("wall_s") or 0.0, data.get("sessions", 1) + 1
        log.info(
            "resumed: %d finished trials, %.0f s in %d earlier session(s)",
            len(self.trials),
            self.earlier_wall_s,
            self.sessions - 1,
        )

    def _replay(self, study) -> dict[str, Trial]:
        """Tell the sampler the restored trials of the space (not the anchors): as if it had asked for them."""
        seen: dict[str, Trial] = {}
        for trial in self.trials:
            if trial.kind not in (REFERENCE, SEARCH):
                continue
            study.enqueue_trial(trial.point.params)
            asked = study.ask()
            space.suggest(asked, self.space)
            self._tell(study, asked, trial)
            seen[trial.point.key] = trial
        return seen

    # --- the loop --------------------------------------------------------------------------------------------

    def out_of_budget(self) -> bool:
        if len(self.trials) >= self.tcfg.max_trials:
            self.stopped_because = f"tune.max_trials={self.tcfg.max_trials} reached"
            return True
        if self.tcfg.max_minutes is not None and time.monotonic() - self.started > 60 * self.tcfg.max_minutes:
            self.stopped_because = f"tune.max_minutes={self.tcfg.max_minutes:g} reached"
            return True
        return False

    def sampler(self):
        import warnings

        import optuna

        if self.grid:
            # Define-by-run like the TPE search, so a `when` param is enumerated only where it applies; strict
            # (avoid_premature_stop): it stops only when every branch ran. Experimental since optuna 3.1 (pinned).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.samplers.BruteForceSampler(seed=self.tcfg.seed, avoid_premature_stop=True)
        return optuna.samplers.TPESampler(
            seed=self.tcfg.seed, constraints_func=lambda t: t.user_attrs.get("constraint", (0.0,))
        )

    def announce(self) -> None:
        """The grid's size before it starts, and whether the trial budget lets it be exhaustive."""
        if not self.grid:
            return
        total, left = self.coverage().size, self.tcfg.max_trials - len(self.trials)
        todo = total - len(self.visited())
        log.info("grid over %s: %d points (%s); %d to run", self.tcfg.name, total, ", ".join(self.space), todo)
        if todo > left:
            log.warning(
                "tune.max_trials=%d leaves room for %d of the %d points left: the grid will NOT be exhaustive "
                "(tune.max_trials=%d covers it)",
                self.tcfg.max_trials,
                max(left, 0),
                todo,
                total,
            )

    def run(self, anchors: dict[str, space.Point]) -> list[Trial]:
        try:
            return self._loop(anchors)
        finally:
            self.ended = time.monotonic()

    def _loop(self, anchors: dict[str, space.Point]) -> list[Trial]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="minimize", sampler=self.sampler())
        seen = self._replay(study)
        if not seen:
            study.enqueue_trial(space.reference_values(self.space))
        total = space.size(self.space)
        self.announce()
        ran = {t.name for t in self.trials}
        anchors_left = {name: point for name, point in anchors.items() if f"anchor:{name}" not in ran}
        repeated = 0
        while True:
            if len(seen) >= total and not anchors_left:
                self.stopped_because = f"every point of the space ran ({len(seen)})"
                break
            if self.out_of_budget():
                break
            if anchors_left and self.trials:  # the reference first, then each anchor
                name = next(iter(anchors_left))
                point = anchors_left.pop(name)
                self.run_trial(f"anchor:{name}", ANCHOR, point)
                continue
            asked = study.ask()
            point = space.suggest(asked, self.space)
            if point.key in seen:  # Optuna suggested a point already measured: tell it the same, run nothing
                self._tell(study, asked, seen[point.key])
                repeated += 1
                if repeated > MAX_REPEATED_SUGGESTIONS:
                    self.stopped_because = f"Optuna suggested only points already run, {repeated} times in a row"
                    break
                continue
            repeated = 0
            trial = self.run_trial(
                REFERENCE if not self.trials else f"trial {len(self.trials)}",
                REFERENCE if not self.trials else SEARCH,
                point,
            )
            seen[point.key] = trial
            self._tell(study, asked, trial)
        return self.trials

    @staticmethod
    def _tell(study, asked, trial: Trial) -> None:
        from optuna.trial import TrialState

        try:
            if trial.state == gate.PRUNED:
                study.tell(asked, state=TrialState.PRUNED)
            elif trial.median_s is None:
                study.tell(asked, state=TrialState.FAIL)
            else:
                asked.set_user_attr("constraint", (0.0 if trial.state == gate.FEASIBLE else 1.0,))
                study.tell(asked, trial.median_s)
        except RuntimeError as exc:
            # BruteForceSampler calls study.stop() after the last point, which outside study.optimize raises once
            # the trial is stored (Optuna's own workaround, optuna/optuna#4121): the loop's count ends the grid.
            if "Study.stop" not in str(exc):
                raise
