"""`python -m diffexp.floor model=… [Hydra overrides] [--out DIR] [--step-ms MS] [--run RUN_ID]`: the compute
floor of one denoise step of the composed run, and the run's efficiency against it (docs/floor.md)."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.logging import RichHandler

from diffexp import rundir
from diffexp.errors import DiffexpError

# Run params that must match the composed config for the run's step time to be comparable with the floor.
SHAPE_PARAMS = (
    "model.name",
    "model.sampling.width",
    "model.sampling.height",
    "model.sampling.resolution",
    "model.sampling.num_frames",
)


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m diffexp.floor",
        description="Count one denoise step's GEMM / attention / memory-bound work for the composed run and time "
        "the device (a CUDA GPU, or the CPU for the tiny models) at exactly those shapes: the floor, and the run's "
        "efficiency against it.",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for python -m diffexp (model=flux1_dev …)")
    parser.add_argument("--out", type=Path, help="write floor.json and floor.md here")
    parser.add_argument("--step-ms", type=float, help="the run's measured denoise step time, ms (efficiency)")
    parser.add_argument(
        "--run", help="MLflow run id: read its denoise_step_ms (and profile categories), log floor.* onto it"
    )
    parser.add_argument("--tracking-uri", help="store of --run [$MLFLOW_TRACKING_URI, else ./mlruns/mlflow.db]")
    parser.add_argument("--count-only", action="store_true", help="count, do not time, even on a GPU")
    parser.add_argument("--top", type=int, default=12, help="shapes listed [%(default)s]")
    return parser.parse_args(argv)


def _run_context(args: argparse.Namespace, cfg) -> tuple[Optional[object], dict, dict]:
    """(client, the run's metrics, its params) for --run; nothing without it. MLflow is imported only here."""
    if not args.run:
        return None, {}, {}
    from diffexp.tracking.queries import get_run
    from diffexp.tracking.store import client_for

    client = client_for(args.tracking_uri)
    run = get_run(client, args.run)
    composed = {
        "model.name": cfg.model.name,
        "model.sampling.width": cfg.model.sampling.width,
        "model.sampling.height": cfg.model.sampling.height,
        "model.sampling.resolution": cfg.model.sampling.resolution,
        "model.sampling.num_frames": cfg.model.sampling.num_frames,
    }
    differ = [
        f"{k}: run {run.params[k]!r}, composed {str(composed[k])!r}"
        for k in SHAPE_PARAMS
        if k in run.params and run.params[k] != str(composed[k])
    ]
    if differ:
        raise DiffexpError(
            f"run {args.run} was made at other shapes than the composed config (give its overrides): "
            + "; ".join(differ)
        )
    return client, run.metrics, run.params


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    console = Console()
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console)])
    try:
        return _main(args, console)
    except DiffexpError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2


def _main(args: argparse.Namespace, console: Console) -> int:
    from diffexp.config import compose, to_config
    from diffexp.engines import validate
    from diffexp.floor.of_run import floor_of
    from diffexp.floor.report import print_floor, run_category_ms, write_floor
    from diffexp.logs import quiet_libraries

    quiet_libraries()
    cfg = to_config(compose(args.overrides))
    validate(cfg)
    client, run_metrics, _ = _run_context(args, cfg)
    step_ms = args.step_ms or run_metrics.get("denoise_step_ms")
    run_ms = run_category_ms(run_metrics)
    of = floor_of(cfg, step_ms, count_only=args.count_only)
    if not of.floor.measured and not args.count_only:
        console.print(f"counted on {of.context['counted_on']}: shapes only, nothing timed (run this on a GPU)")
    print_floor(of.floor, of.title, run_ms, args.top, console)
    context = {**of.context, "overrides": list(args.overrides), "run_id": args.run}
    if args.out:
        written = write_floor(of.floor, args.out, of.title, context, run_ms)
        console.print(f"wrote {', '.join(str(p) for p in written)}")
    if client is not None:
        from diffexp.tracking.writer import RunWriter

        writer = RunWriter(client, args.run)
        writer.log_metrics(of.floor.metrics())
        with tempfile.TemporaryDirectory() as tmp:
            # Written afresh, so only the floor's own files go up, whatever else --out holds.
            write_floor(of.floor, Path(tmp), of.title, context, run_ms)
            writer.log_artifact(Path(tmp), rundir.FLOOR)
        console.print(f"logged {len(of.floor.metrics())} floor.* metrics and floor/ onto run {args.run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
