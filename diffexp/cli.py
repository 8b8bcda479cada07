"""What every `python -m diffexp.<command>` shares: one argument style (positional subjects, `--options`, the same
`--tracking-uri`), and one meaning of the exit status: 0 ok, 1 the answer is bad news (a regression, a failed
review), 2 the input is unusable (bad arguments, missing runs, broken files), 3 the command crashed (a bug or a
broken environment; its traceback printed), which Python alone would report as 1, the bad news a script reads as a
result."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Sequence

from diffexp.errors import DiffexpError

EXIT_OK, EXIT_BAD_NEWS, EXIT_UNUSABLE, EXIT_CRASHED = 0, 1, 2, 3
TRACKING_HELP = "MLflow store (default: $MLFLOW_TRACKING_URI, else ./mlruns/mlflow.db)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 too; say it the same way as every other unusable input
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_UNUSABLE)


def parser(prog: str, doc: str | None, tracking: bool = True) -> argparse.ArgumentParser:
    """A parser for `python -m diffexp.<prog>` with its module docstring as help and, by default, --tracking-uri."""
    made = _Parser(
        prog=f"python -m diffexp.{prog}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if tracking:
        made.add_argument("--tracking-uri", default=None, help=TRACKING_HELP)
    return made


def guarded(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """A command's exit status with a crash kept apart from its verdicts: an unexpected exception prints its
    traceback and exits 3 (EXIT_CRASHED), never 1."""
    try:
        return main(argv)
    except Exception:
        traceback.print_exc()
        print("error: the command crashed (the traceback above); exit status 3, not a verdict", file=sys.stderr)
        return EXIT_CRASHED


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call a command's main; a DiffexpError becomes one clear line and exit 2, never a traceback; a crash exit 3."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def unusable_as_one_line(args: Sequence[str] | None) -> int:
        try:
            return main(args)
        except DiffexpError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_UNUSABLE

    return guarded(unusable_as_one_line, argv)
