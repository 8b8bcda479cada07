"""`python -m diffexp.compare`: the command is diffexp/compare/command.py (its docstring is the help). It is imported
here inside the guard, so that a crash while importing it (MLflow missing, a broken install) exits 3 like any other
crash, not 1, which is this gate's "regression"."""

from __future__ import annotations

import sys

from diffexp import cli


def main(argv=None) -> int:
    from diffexp.compare.command import main as command

    return command(argv)


if __name__ == "__main__":
    sys.exit(cli.guarded(main))
