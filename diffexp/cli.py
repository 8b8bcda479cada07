"""What every `python -m diffexp.<command>` shares: one argument style (positional subjects, `--options`, the same
`--tracking-uri`), and one meaning of the exit status: 0 ok, 1 the answer is bad news (a regression, a failed
review), 2 the input is unusable (bad arguments, missing runs, broken files)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from diffexp.errors import DiffexpError

EXIT_OK, EXIT_BAD_NEWS, EXIT_UNUSABLE = 0, 1, 2
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


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call a command's main; a DiffexpError becomes one clear line and exit 2, never a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return main(argv)
    except DiffexpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
