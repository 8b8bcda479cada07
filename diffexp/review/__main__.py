"""`python -m diffexp.review RUN [RUN ...] [--reference REF] [--tracking-uri URI]`: review logged runs.

Writes the verdict tag, figures and pictures onto each RUN, as a run with review.reference set does.
Exit status: 0 all passed, 1 any failed, 2 any unchecked (no reference, or the review could not be done), 3 it
crashed (a traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from diffexp import cli
from diffexp.errors import DiffexpError

log = logging.getLogger("diffexp.review")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m diffexp.review", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="MLflow run id(s) to review")
    parser.add_argument(
        "--reference",
        help="run id, latest:<model>, sweep:first, sweep:baseline or a path (default: each run's own review.reference, "
        "or its sweep's first point)",
    )
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: the local store ./mlruns/mlflow.db)")
    return parser.parse_args(argv)


def print_outcome(run_id: str, outcome) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"run {run_id}: correctness {outcome.verdict}")
    table.add_column("")
    table.add_column("value", justify="right")
    for key, value in outcome.described().items():
        if value:
            table.add_row(key.replace("_", " "), str(value))
    for key, value in outcome.figures.items():
        table.add_row(key, f"{value:.4g}")
    Console().print(table)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Not diffexp.logs.quiet_libraries: that imports diffusers and transformers, which a review never needs.
    for name in ("mlflow", "alembic", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from diffexp.review import FAIL, PASS, review_logged_run
    from diffexp.tracking.store import client_for

    client = client_for(args.tracking_uri)
    verdicts = []
    for run_id in args.runs:
        try:
            outcome = review_logged_run(client, run_id, args.reference)
        except DiffexpError as exc:  # the run itself cannot be found: nothing to record on
            log.error("%s", exc)
            verdicts.append(None)
            continue
        print_outcome(run_id, outcome)
        verdicts.append(outcome.verdict)
    if FAIL in verdicts:
        return 1
    return 0 if all(v == PASS for v in verdicts) else 2


if __name__ == "__main__":
    sys.exit(cli.guarded(main))
