"""`python -m diffexp.bench.startup [--rounds N] [--out DIR]`: what `python -m diffexp` (the built-in default)
costs against a bare script that imports diffusers, loads the same tiny FLUX checkpoint and generates the same
image. Both run as fresh processes, alternated AB BA … in one run so machine noise hits both alike; the median wall
time of each and their ratio are printed (and written to DIR/startup.json)."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from diffexp.measure.pairing import alternating

BARE = """
import sys, torch
from diffusers import FluxPipeline
pipe = FluxPipeline.from_pretrained(sys.argv[1], torch_dtype=torch.float32)
pipe.set_progress_bar_config(disable=True)
image = pipe(prompt=sys.argv[2], width=64, height=64, num_inference_steps=4, guidance_scale=3.5,
             max_sequence_length=32, generator=torch.Generator("cpu").manual_seed(42)).images[0]
image.save(sys.argv[3])
"""


def _timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffexp.bench.startup", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    from diffexp.config import compose, to_config
    from diffexp.models.tiny import ensure_tiny_checkpoint

    cfg = to_config(compose([]))
    checkpoint = ensure_tiny_checkpoint(cfg.model.name)  # built once, outside the timings
    times: dict[str, list[float]] = {"bare": [], "diffexp": []}
    with tempfile.TemporaryDirectory(prefix="diffexp-startup-") as tmp:
        work = Path(tmp)
        _timed([sys.executable, "-m", "diffexp"], work)  # creates the local store once, like a user's second run
        commands = {
            "bare": [sys.executable, "-c", BARE, str(checkpoint), cfg.model.sampling.prompt, "x.png"],
            "diffexp": [sys.executable, "-m", "diffexp"],
        }
        for r in range(args.rounds):
            for name in alternating(list(commands), r):
                times[name].append(_timed(commands[name], work))
    result = {k: {"median_s": statistics.median(v), "all_s": v} for k, v in times.items()}
    result["ratio"] = result["diffexp"]["median_s"] / result["bare"]["median_s"]
    print(f"bare script: {result['bare']['median_s']:.2f} s, python -m diffexp: {result['diffexp']['median_s']:.2f} s "
          f"(median of {args.rounds}, alternated), ratio {result['ratio']:.2f}")  # fmt: skip
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "startup.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
