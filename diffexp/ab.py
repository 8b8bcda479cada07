"""`python -m diffexp.ab --base "OVERRIDES" --candidate "OVERRIDES" [--rounds N] [COMMON OVERRIDES ...]`:
a paired, interleaved A/B. Each round runs a fresh process of each side, the order alternating from round to round
(AB BA AB …, each round's `first` in ab.json), so drift of the machine (clocks, temperature, neighbours) lands on
both sides of a pair and an effect of going second (a warm page cache, a hotter GPU) cancels instead of biasing
every ratio one way; the verdict is the median paired ratio's 95 % interval against ±min effect
(diffexp.compare.noise).

    python -m diffexp.ab --base "kernels=torch" --candidate "kernels=triton" --rounds 6 model=flux1_dev \\
        model.weights=random engine=diffusers compile=on

Recorded as one MLflow parent run (the paired figures and the verdict) with a child run per process, or, with
tracking.enabled=false, as <out>/ab.json. Exit status: 0, 1 when the candidate is slower beyond the noise,
2 for a usage or config error, 3 when it crashed (a traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shlex
import sys
import time
from pathlib import Path
from statistics import median

from diffexp import cli, rundir
from diffexp.compare.noise import MIN_EFFECT_PCT, SLOWER, verdict
from diffexp.config import Config, check_launch, compose, to_config
from diffexp.engines import validate
from diffexp.errors import DiffexpError
from diffexp.logs import quiet_libraries
from diffexp.measure.pairing import alternating
from diffexp.replicates import child_config, run_child
from diffexp.results import RunResult

log = logging.getLogger("diffexp.ab")
SIDES = ("base", "candidate")
METRIC = "denoise_s"


@dataclasses.dataclass
class Round:
    index: int
    results: dict[str, RunResult]  # by side

    def figure(self, side: str) -> float:
        return getattr(self.results[side], METRIC)


def configs(common: list[str], base: list[str], cand: list[str], out: Path) -> dict[str, Config]:
    cfgs = {}
    for side, extra in zip(SIDES, (base, cand)):
        cfg = to_config(compose([*common, *extra, f"output_dir={out / side}"]))
        validate(cfg)
        check_launch(cfg)
        cfgs[side] = cfg
    return cfgs


def run_rounds(cfgs: dict[str, Config], rounds: int, out: Path) -> list[Round]:
    done = []
    for r in range(rounds):
        results = {}
        for side in alternating(SIDES, r):
            child_dir = out / f"round{r}" / side
            log.info("round %d/%d: %s", r + 1, rounds, side)
            results[side] = run_child(child_config(cfgs[side], r, child_dir), child_dir)
            if not results[side].valid:
                raise DiffexpError(f"round {r} {side}: the run is not valid ({results[side].invalid_reason})")
        done.append(Round(r, results))
        log.info("round %d: base %.4f s, candidate %.4f s", r, done[-1].figure("base"), done[-1].figure("candidate"))
    return done


def summary(rounds: list[Round], min_effect_pct: float, labels: dict[str, str]) -> dict:
    base = [r.figure("base") for r in rounds]
    cand = [r.figure("candidate") for r in rounds]
    v = verdict(base, cand, METRIC, min_effect_pct, paired=True)
    return {
        "metric": METRIC,
        "base": labels["base"],
        "candidate": labels["candidate"],
        "rounds": [
            {"round": r.index, "first": alternating(SIDES, r.index)[0], "base": b, "candidate": c, "ratio": c / b}
            for r, b, c in zip(rounds, base, cand)
        ],
        "base_median": median(base),
        "candidate_median": median(cand),
        "delta_pct": v.delta.pct,
        "ci95_low_pct": v.delta.ci95_low_pct,
        "ci95_high_pct": v.delta.ci95_high_pct,
        "min_effect_pct": min_effect_pct,
        "verdict": v.verdict,
        "text": v.text(),
        "throttled": {
            side: [r.index for r in rounds if r.results[side].tags.get("gpu.throttled") == "true"] for side in SIDES
        },
    }


def record(cfgs: dict[str, Config], rounds: list[Round], result: dict, out: Path) -> str:
    """One MLflow parent run with the paired figures, a child run per process; returns the parent's id."""
    from diffexp.tracking.naming import run_tags
    from diffexp.tracking.params import flatten
    from diffexp.tracking.writer import RunRecorder

    base_cfg = cfgs["base"]
    experiment = base_cfg.tracking.experiment or base_cfg.model.name
    name = f"A/B {result['base']} vs {result['candidate']}"
    params = {"ab.base": result["base"], "ab.candidate": result["candidate"], "ab.rounds": str(len(rounds))}
    with RunRecorder(
        base_cfg.tracking.uri, experiment, name, params, {**run_tags(base_cfg), "diffexp.role": "ab"}
    ) as parent:
        parent.log_metrics(
            {
                f"ab.{k}": result[k]
                for k in ("base_median", "candidate_median", "delta_pct", "ci95_low_pct", "ci95_high_pct")
                if result[k] is not None
            }
        )
        parent.set_tags({"ab.verdict": result["verdict"], "ab.text": result["text"]})
        parent.log_artifact(out / "ab.json")
        for r in rounds:
            for side in SIDES:
                cfg = cfgs[side]
                with RunRecorder(
                    cfg.tracking.uri,
                    experiment,
                    f"{name} · round {r.index} · {side}",
                    flatten(dataclasses.asdict(cfg)),
                    {**run_tags(cfg), "ab.side": side, "ab.round": str(r.index)},
                    parent_run_id=parent.run_id,
                ) as child:
                    child.log_result(r.results[side])
    return parent.run_id


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"A/B {METRIC}: {result['base']} vs {result['candidate']}")
    for column in ("round", "base (s)", "candidate (s)", "ratio"):
        table.add_column(column, justify="right")
    for r in result["rounds"]:
        table.add_row(str(r["round"]), f"{r['base']:.4f}", f"{r['candidate']:.4f}", f"{r['ratio']:.4f}")
    console = Console()
    console.print(table)
    console.print(result["text"], style="bold red" if result["verdict"] == SLOWER else "bold")
    for side, throttled in result["throttled"].items():
        if throttled:
            console.print(f"{side}: GPU throttled in round(s) {throttled}", style="yellow")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffexp.ab", description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help='the baseline\'s overrides, one string: "kernels=torch"')
    parser.add_argument("--candidate", required=True, help='the candidate\'s overrides: "kernels=triton"')
    parser.add_argument("--rounds", type=int, default=6, help="base/candidate pairs, each a fresh process (default 6)")
    parser.add_argument("--min-effect", type=float, default=MIN_EFFECT_PCT, help="smallest change that counts, in %%")
    parser.add_argument("--out", type=Path, help="where the processes' files go (default outputs/ab/<time>)")
    parser.add_argument("overrides", nargs="*", help="overrides common to both sides (model=..., tracking...)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    out = (args.out or Path(rundir.OUTPUTS) / "ab" / time.strftime("%Y-%m-%d_%H-%M-%S")).resolve()
    try:
        base, cand = shlex.split(args.base), shlex.split(args.candidate)
        cfgs = configs(args.overrides, base, cand, out)
        rounds = run_rounds(cfgs, args.rounds, out)
    except DiffexpError as exc:
        log.error("%s", exc)
        return 2
    result = summary(rounds, args.min_effect, {"base": " ".join(base), "candidate": " ".join(cand)})
    (out / "ab.json").write_text(json.dumps(result, indent=2))
    print_table(result)
    if cfgs["base"].tracking.enabled:
        run_id = record(cfgs, rounds, result, out)
        print(f"logged to {cfgs['base'].tracking.uri or 'mlruns/'} (A/B parent run {run_id})")
    print(f"files in {out}")
    return 1 if result["verdict"] == SLOWER else 0


if __name__ == "__main__":
    sys.exit(cli.guarded(main))
