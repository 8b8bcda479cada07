"""CLI: `python -m diffexp.compare BASE CANDIDATE [--rule guide|sglang|noise] [--min-effect PCT] [--markdown FILE]`.

Each side is a perf dump file, an MLflow run id, or a sweep parent (run id, run name or sweep name;
its points are compared with the other sweep's points that have the same swept overrides).
Every run-vs-run comparison also shows the noise-aware verdict (diffexp.compare.noise); `--rule noise` shows the
guide's table and lets that verdict decide (exit 1 only when the candidate is slower beyond the noise).
Exit status: 0 no regression; 1 regression (or the candidate failed its correctness review); 2 unusable
input: a usage error, a perf dump compare cannot judge (no `steps`, a null / NaN / zero / negative
duration), or two sides that did not do the same work (steps, size, frames, guidance, model) without
--allow-different-work. 3: it crashed (a traceback), never read as a regression.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Union

from diffexp import names
from diffexp.compare import work
from diffexp.compare.core import DENOISE, Comparison, compare, side_from_dump, side_from_run
from diffexp.compare.noise import MIN_EFFECT_PCT, SLOWER, noise_report
from diffexp.compare.perf_dump import read_perf_dump
from diffexp.compare.render import print_terminal, to_markdown
from diffexp.compare.rules import RULES
from diffexp.errors import DiffexpError
from diffexp.reports.summary import markdown_table, point_label
from diffexp.tracking.records import RecordedRun, children, find_parent, get_run
from diffexp.tracking.store import client_for

log = logging.getLogger("diffexp.compare")

Ref = Union[Path, RecordedRun]


def resolve(ref: str, store) -> Ref:
    path = Path(ref)
    if path.is_file():
        return path
    if path.suffix == ".json":
        raise DiffexpError(f"{ref}: no such perf dump file")
    try:
        run = get_run(store, ref)
    except DiffexpError:
        run = find_parent(store, ref)  # a sweep by run name or sweep name
    return run


def _is_sweep(ref: Ref) -> bool:
    return isinstance(ref, RecordedRun) and ref.tags.get(names.SWEEP_ROLE) == "parent"


def _point_key(run: RecordedRun) -> str:
    return json.dumps(sorted(json.loads(run.tags.get(names.SWEEP_OVERRIDES, "[]"))))


def _usable_run(run: RecordedRun) -> None:
    """A run that did not finish, or whose figures are not numbers to compare, is unusable input (exit 2):
    never a passing side, and never mistaken for a regression either."""
    why = []
    if run.status != "FINISHED":
        why.append(f"its status is {run.status}")
    if run.tags.get(names.VALID) == "false":
        why.append(f"it is marked invalid ({run.tags.get(names.INVALID_REASON, 'no reason recorded')})")
    if run.result.denoise_s is None:
        why.append("it has no denoise_s")
    if why:
        raise DiffexpError(f"run {run.run_id} ({run.name or 'unnamed'}) cannot be compared: {'; '.join(why)}")


def _side_and_work(ref: Ref, rule: str):
    if isinstance(ref, Path):
        dump = read_perf_dump(ref)
        return side_from_dump(dump, rule), work.of_dump(dump)
    _usable_run(ref)
    return side_from_run(ref), work.of_run(ref)


def _compare_same_work(base: Ref, cand: Ref, rule: str, allow_different_work: bool, label: str = "") -> Comparison:
    """One comparison, refused (DiffexpError, exit 2) when the two sides did different work, unless allowed."""
    (base_side, base_work), (cand_side, cand_work) = _side_and_work(base, rule), _side_and_work(cand, rule)
    different = work.differences(base_work, cand_work)
    if different and not allow_different_work:
        raise DiffexpError(
            f"not the same work{' (' + label + ')' if label else ''}: " + "; ".join(different) + ". Their timings "
            "measure different work; pass --allow-different-work to compare them anyway"
        )
    comparison = compare(base_side, cand_side, rule)
    if different:
        comparison.notes.insert(0, "NOT THE SAME WORK (--allow-different-work): " + "; ".join(different))
    return comparison


def compare_refs(
    base: Ref, cand: Ref, rule: str, store, allow_different_work: bool = False
) -> tuple[list[tuple[str, Comparison]], list[str]]:
    """The comparisons to show, and extra lines (sweep overview, unmatched points)."""
    if _is_sweep(base) != _is_sweep(cand):
        raise DiffexpError("compare a sweep with a sweep, or a run / perf dump with a run / perf dump")
    if not _is_sweep(base):
        return [("", _compare_same_work(base, cand, rule, allow_different_work))], []
    base_points = {_point_key(p): p for p in children(store, base)}
    cand_points = {_point_key(p): p for p in children(store, cand)}
    comparisons = [
        (
            point_label(cand_points[k]),
            _compare_same_work(p, cand_points[k], rule, allow_different_work, point_label(cand_points[k])),
        )
        for k, p in base_points.items()
        if k in cand_points
    ]
    if not comparisons:
        raise DiffexpError(f"sweeps {base.run_id} and {cand.run_id} have no point with the same swept overrides")
    overview = []
    for label, c in comparisons:
        row = next((r for r in c.rows if r.name == DENOISE), None)
        overview.append(
            {
                "Point": label,
                "Baseline denoise (s)": f"{row.base / 1000:.3f}" if row and row.base is not None else "-",
                "Candidate denoise (s)": f"{row.new / 1000:.3f}" if row and row.new is not None else "-",
                "Δ %": f"{row.pct:+.1f}%" if row and row.pct is not None else "-",
                "Verdict": c.verdict().split(":")[0],
                "Correctness": c.cand.correctness,
            }
        )
    extra = ["#### Points", "", markdown_table(list(overview[0]), overview)]
    unmatched = [
        point_label(p)
        for k, p in {**base_points, **cand_points}.items()
        if k not in base_points or k not in cand_points
    ]
    if unmatched:
        extra.append("Points in only one sweep (not compared): " + "; ".join(unmatched))
    return comparisons, extra


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffexp.compare", description=__doc__.splitlines()[0])
    parser.add_argument(
        "base", help="baseline: perf dump file, MLflow run id, or sweep parent (id, run name, sweep name)"
    )
    parser.add_argument("candidate", help="candidate, same kinds as the baseline")
    parser.add_argument(
        "--rule",
        choices=(*RULES, "noise"),
        default="guide",
        help="guide (denoise > 2 %% slower), sglang (compare_perf.py thresholds) or noise (slower beyond the 95 %% interval)",
    )
    parser.add_argument(
        "--min-effect", type=float, default=MIN_EFFECT_PCT, help="noise verdict: smallest change that counts, in %%"
    )
    parser.add_argument(
        "--allow-different-work",
        action="store_true",
        help="compare sides with different steps / size / frames / guidance / model (refused by default)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the report as markdown (for a pull request)")
    parser.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlruns/mlflow.db)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        store = None if all(Path(a).is_file() for a in (args.base, args.candidate)) else client_for(args.tracking_uri)
        base, cand = resolve(args.base, store), resolve(args.candidate, store)
        rule = "guide" if args.rule == "noise" else args.rule
        comparisons, extra = compare_refs(base, cand, rule, store, args.allow_different_work)
        verdicts, noise_extra = noise_report(comparisons, store, args.min_effect)
    except DiffexpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_terminal(comparisons, [*noise_extra, *extra])
    if args.markdown:
        args.markdown.write_text(to_markdown(comparisons, extra=[*noise_extra, *extra]))
        print(f"markdown written to {args.markdown}")
    if args.rule == "noise":
        return (
            1 if any(v == SLOWER for v in verdicts) or any(c.cand.correctness == "fail" for _, c in comparisons) else 0
        )
    return 1 if any(c.failed for _, c in comparisons) else 0
