"""`python -m diffexp.tune [tune=SPACE] [tune.FIELD=VALUE ...] [RUN OVERRIDES ...]`: measured auto-tuning under a
VRAM (or host-memory) budget, with the correctness review as the gate (docs/tune.md).

    python -m diffexp.tune model=flux1_dev model.weights=random tune.vram_gib=24
    python -m diffexp.tune tune=tiny_cpu tune.host_gib=4 tune.max_trials=6
    python -m diffexp.tune tune=tiny_cpu tune.host_gib=4 tune.search=grid       # every point of the space once
    python -m diffexp.tune --log outputs/tune/<time>      # log an untracked tuning into MLflow

Exit status: 0 a winner, 1 no configuration fits the budget and passes the review, 2 an unusable config,
3 it crashed (a traceback: never read as "no configuration fits"), 130 interrupted (the finished trials are kept;
the parent run ends KILLED, tagged tune.interrupted=true).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

from diffexp import cli, rundir
from diffexp.errors import DiffexpError, RunInterrupted

log = logging.getLogger("diffexp.tune")


def _terminate_as_interrupt() -> None:
    def handler(signum, frame):
        raise RunInterrupted(f"received signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    # Started in the background, a process inherits SIGINT ignored: `kill -INT` must still interrupt the tuning.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def prepare(argv: list[str]):
    from diffexp.config import validate
    from diffexp.tune.config import default_space, load_tune_config, split_overrides
    from diffexp.tune.search import composed

    name, tune_overrides, run_overrides = split_overrides(argv)
    base = composed(run_overrides)
    validate(base)
    tcfg = load_tune_config(name or default_space(base.model.task, base.model.weights), tune_overrides)
    return tcfg, run_overrides, base


def print_outcome(search, outcome) -> None:
    from diffexp.reports.tune import markdown

    print(markdown([t.row() for t in search.trials], outcome.winner.number if outcome.winner else None))
    if search.stopped_because:
        print(f"stopped: {search.stopped_because}")
    if search.grid:
        print(f"grid: {search.coverage().text()}")
    w = outcome.winner
    if w is None:
        print(f"NO WINNER: {outcome.decided_by}")
        return
    spread = w.result.spread.get("denoise_s", {})
    interval = f" [{spread['ci95_low']:.4g}, {spread['ci95_high']:.4g}] (95 %)" if "ci95_low" in spread else ""
    memory = ", ".join(
        f"{label} {value:.3g} GiB"
        for label, value in (("peak VRAM", w.row().vram_gib), ("peak host RSS", w.host_gib))
        if value is not None
    )
    print(f"winner: trial {w.number} ({w.name}) — {outcome.decided_by}")
    print(f"  denoise_s {w.median_s:.4g} s{interval}, n={len(w.sample)}; {memory}; correctness {w.correctness}")
    if outcome.noise_text:
        print(f"  {outcome.noise_text}")
    for gain in outcome.gains:
        print(f"  gain over {gain.text()}")
    print(f"reproduce:\n  {outcome.command}")
    if outcome.sglang_command:
        print(f"sglang:\n  {outcome.sglang_command}")
    for note in outcome.sglang_notes:
        print(f"  note: {note}")


def previous(tcfg, run_overrides, base, out: Path):
    """The earlier sessions' tune.json of a resumed tuning (tune.resume=true), or None."""
    from diffexp.errors import ConfigError
    from diffexp.tune import record

    if not tcfg.resume:
        return None
    if base.tracking.enabled:
        raise ConfigError(
            ["tune.resume=true continues an untracked tuning (tracking.enabled=false; log it later with --log)"]
        )
    return record.previous(out, tcfg, run_overrides)


def tune(argv: list[str]) -> int:
    from diffexp.tune import anchors as anchor_points
    from diffexp.tune import record
    from diffexp.tune.config import GRID
    from diffexp.tune.search import Search, machine
    from diffexp.tune.winner import decide

    tcfg, run_overrides, base = prepare(argv)
    out = Path(tcfg.out or Path(rundir.OUTPUTS) / "tune" / time.strftime("%Y-%m-%d_%H-%M-%S")).resolve()
    earlier = previous(tcfg, run_overrides, base, out)
    out.mkdir(parents=True, exist_ok=True)
    box = machine()
    anchors, auto = {}, None
    if tcfg.search != GRID:  # the grid is the space alone: anchors are the tuner's fixed configurations
        anchors = anchor_points.declared(tcfg)
        auto = anchor_points.sglang_auto(base, tcfg, box)
    if auto is not None:
        anchors[anchor_points.SGLANG_AUTO] = auto[0]
    log.info(
        "tuning %s (%s) in %s (%s), budget: VRAM %s GiB, host %s GiB",
        tcfg.name,
        tcfg.search,
        out,
        f"{box.num_gpus} GPU(s)" if box.cuda else "CPU",
        tcfg.vram_gib,
        tcfg.host_gib,
    )
    _terminate_as_interrupt()

    def conclude(search, interrupted: bool):
        outcome = decide(search, [t for t in search.trials if t.kind == "anchor"])
        return outcome, record.write_files(search, outcome, interrupted)

    if not base.tracking.enabled:
        search = Search(tcfg, run_overrides, out, box, checkpoint=record.write_checkpoint)
        if earlier is not None:
            search.restore(earlier)
        try:
            search.run(anchors)
        except (KeyboardInterrupt, RunInterrupted):
            conclude(search, interrupted=True)
            raise
        outcome, files = conclude(search, interrupted=False)
        print_outcome(search, outcome)
        print(f"not tracked; trials in {out / record.SUMMARY} (log them: python -m diffexp.tune --log {out})")
        return 0 if outcome.winner else 1

    from diffexp.tracking.naming import run_tags
    from diffexp.tracking.writer import RunRecorder

    experiment = base.tracking.experiment or base.model.name
    with RunRecorder(
        base.tracking.uri,
        experiment,
        f"tune {tcfg.name} · {base.model.name}",
        record.parent_params(tcfg, run_overrides),
        {**run_tags(base), "diffexp.role": record.ROLE},
    ) as parent:
        tracked = record.Tracked(parent, experiment)
        search = Search(
            tcfg, run_overrides, out, box, parent.run_id, on_stage=tracked.on_stage, checkpoint=record.write_checkpoint
        )
        try:
            search.run(anchors)
        except (KeyboardInterrupt, RunInterrupted):
            outcome, files = conclude(search, interrupted=True)
            record.finish_parent(parent, outcome, search, files, interrupted=True)
            raise
        outcome, files = conclude(search, interrupted=False)
        record.finish_parent(parent, outcome, search, files, interrupted=False)
    print_outcome(search, outcome)
    print(f"logged to {parent.uri} (tuning parent run {parent.run_id}); files in {out}")
    return 0 if outcome.winner else 1


def main(argv=None) -> int:
    from diffexp.logs import quiet_libraries

    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if argv[:1] == ["--log"]:
            from diffexp.tune.record import log_untracked

            uri = argv[argv.index("--tracking-uri") + 1] if "--tracking-uri" in argv else None
            print(f"logged as tuning parent run {log_untracked(Path(argv[1]), uri)}")
            return 0
        quiet_libraries()
        return tune(argv)
    except DiffexpError as exc:
        log.error("%s", exc)
        return 2
    except (KeyboardInterrupt, RunInterrupted):
        log.warning("tuning interrupted: the finished trials are kept")
        logging.shutdown()
        sys.stdout.flush()
        os._exit(130)


if __name__ == "__main__":
    sys.exit(cli.guarded(main))
