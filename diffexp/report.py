"""`python -m diffexp.report sweep REF [--out DIR]`: rebuild a sweep's summary and charts from MLflow (REF: the
parent's run id, run name or sweep name); `python -m diffexp.report suite [--all]`: the guide's standard-suite table
(the newest valid run per model and GPU) as markdown; `python -m diffexp.report tune RUN [--against GRID] [--out DIR]`:
a tuning's trials table and latency–memory chart rebuilt from MLflow or its folder (RUN: the tuning's parent run id,
or its folder with tune.json); with --against, the tuner judged against an exhaustive grid over the same space and
budget (GRID: the grid's parent run id or folder): grid_comparison.md and .json beside the table. Exit status 1 when
the goal (within 5 % of the grid's best in at most a third of its trials) is not met, 0 when met or undecidable,
2 for unusable input, 3 when it crashed (a traceback)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from diffexp import cli


def against_grid(run: str, grid: str, uri):
    """The tuner's run judged against the grid's, before any file is written (two spaces are unusable input)."""
    from diffexp.compare import grid_goal, tunings

    return grid_goal.compare_to_grid(tunings.load(run, uri), tunings.load(grid, uri))


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.parser("report", __doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser("sweep", help="a sweep's summary and charts")
    sweep.add_argument("ref", help="the sweep parent's run id, run name or sweep name (the newest such sweep)")
    sweep.add_argument("--out", type=Path, default=None, help="where the files go (default reports/<parent run id>)")
    suite = commands.add_parser("suite", help="the guide's standard-suite table")
    suite.add_argument("--all", action="store_true", help="every model with a run, not only the guide's seven")
    tune = commands.add_parser("tune", help="a tuning's trials table and latency-memory chart")
    tune.add_argument("run", help="the tuning's parent run id, or its folder (holding tune.json)")
    tune.add_argument("--against", default=None, help="an exhaustive grid's parent run id or folder, same space")
    tune.add_argument("--out", type=Path, default=None, help="where the files go (default reports/<run id or folder>)")
    args = parser.parse_args(argv)
    if args.command == "tune":
        from diffexp.reports.tune import rebuild_tune

        comparison = against_grid(args.run, args.against, args.tracking_uri) if args.against else None
        files, lines = rebuild_tune(args.run, args.out, args.tracking_uri)
        print(files[0].read_text() + lines)
        if comparison is not None:
            from diffexp.compare import grid_goal

            files = grid_goal.write(comparison, files[0].parent)
            print("\n" + files[0].read_text())
            print(f"files in {files[0].parent}")
            return cli.EXIT_BAD_NEWS if comparison.verdict == grid_goal.NOT_MET else cli.EXIT_OK
        print(f"files in {files[0].parent}")
    elif args.command == "sweep":
        from diffexp.reports.sweep_report import rebuild_sweep

        report = rebuild_sweep(args.ref, args.out, args.tracking_uri)
        print(report.summary.to_markdown())
        print(f"{report.summary.passed} passed, {report.summary.failed} failed; files in {report.files[0].parent}")
    else:
        from diffexp.reports.suite import suite_runs, suite_table

        print(suite_table(suite_runs(args.tracking_uri), args.all), end="")
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(cli.run(main))
