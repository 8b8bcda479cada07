"""`python -m diffexp.profile TRACE [TRACE2]`: analyse or compare torch.profiler traces, print tables, write files."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from diffexp.errors import DiffexpError
from diffexp.profile.analysis import TraceAnalysis, analyze_trace
from diffexp.profile.categories import load_categories
from diffexp.profile.compare import compare_traces
from diffexp.profile.console import print_analysis, print_comparison
from diffexp.profile.report import DEFAULT_TOP, write_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m diffexp.profile",
        description="GPU kernels, categories, record_function scopes, idle time and per-step GPU time "
        "from torch.profiler Chrome traces (.json or .json.gz). Two traces: before/after deltas.",
    )
    parser.add_argument("trace", type=Path, help="trace to analyse (the 'before' trace when comparing)")
    parser.add_argument("trace2", type=Path, nargs="?", help="second trace: compare TRACE (before) with it (after)")
    parser.add_argument("--out", type=Path, default=Path("profile_report"), help="report directory [%(default)s]")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP, help="kernels/scopes shown [%(default)s]")
    parser.add_argument("--categories", type=Path, help="category YAML, or a name in conf/profile_categories/ [guide]")
    parser.add_argument(
        "--step-regex",
        help="regex naming step scopes; group 1 = step number [denoise/denoising step scopes, else ProfilerStep#N]",
    )
    parser.add_argument("--parser", choices=["auto", "fast", "ijson"], default="auto", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console)])
    try:
        categories = load_categories(args.categories)
        analyses = [_analyze(path, categories, args, console) for path in (args.trace, args.trace2) if path]
        if len(analyses) == 2:
            comparison = compare_traces(*analyses)
            print_comparison(comparison, args.top, console)
            written = write_report(comparison, args.out, top=args.top)
        else:
            print_analysis(analyses[0], args.top, console)
            written = write_report(analyses[0], args.out, top=args.top)
    except DiffexpError as err:
        console.print(f"[red]error:[/] {err}")
        return 2
    console.print(f"report: {len(written)} files in {args.out}")
    return 0


def _analyze(path: Path, categories: object, args: argparse.Namespace, console: Console) -> TraceAnalysis:
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(f"reading {path.name}", *columns, console=console, transient=True) as progress:
        task = progress.add_task("read", total=None)
        return analyze_trace(
            path,
            categories,
            args.step_regex,
            parser=args.parser,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )


if __name__ == "__main__":
    sys.exit(main())
